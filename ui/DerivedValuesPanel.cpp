#include "DerivedValuesPanel.h"

#include <QFormLayout>
#include <QLabel>
#include <QLocale>

namespace {

int64_t bytesPerElement(const std::string& dtype) {
  const std::string name = dtype.rfind("torch.", 0) == 0 ? dtype.substr(6) : dtype;
  if (name == "float64") return 8;
  if (name == "float16" || name == "bfloat16") return 2;
  return 4;
}

QString count(int64_t n) {
  return QLocale(QLocale::English).toString(static_cast<qlonglong>(n));
}

}  // namespace

DerivedValuesPanel::DerivedValuesPanel(QWidget* parent) : QWidget(parent) {
  layout_ = new QFormLayout(this);
  layout_->setContentsMargins(4, 4, 4, 4);
  layout_->setVerticalSpacing(2);
  const auto labels = rows(sae::RunConfig{});
  for (const auto& row : labels) {
    auto* value = new QLabel;
    value->setTextInteractionFlags(Qt::TextSelectableByMouse);
    value->setObjectName("derived_" + QString(row.first).replace(' ', '_'));
    layout_->addRow(row.first + ":", value);
    values_ << value;
  }
}

DerivedValuesPanel::Memory DerivedValuesPanel::memory(const sae::RunConfig& config) {
  Memory m;
  const int64_t dIn = config.d_in, dSae = config.derivedDSae();
  // W_enc [d_in, d_sae], b_enc [d_sae], W_dec [d_sae, d_in], b_dec [d_in].
  m.parameters = 2 * dIn * dSae + dSae + dIn;
  const int64_t element = bytesPerElement(config.dtype);
  m.weightBytes = m.parameters * element;
  m.adamBytes = 2 * m.parameters * element;
  // SAELens's buffer: n_batches_in_buffer * store_batch_size contexts of context_size tokens.
  m.bufferBytes =
      config.n_batches_in_buffer * config.store_batch_size * config.context_size * dIn * 4;
  return m;
}

QString DerivedValuesPanel::bytesText(int64_t bytes) {
  const double b = static_cast<double>(bytes);
  if (b >= 1024.0 * 1024 * 1024)
    return QString::number(b / (1024.0 * 1024 * 1024), 'f', 2) + " GiB";
  if (b >= 1024.0 * 1024) return QString::number(b / (1024.0 * 1024), 'f', 1) + " MiB";
  if (b >= 1024.0) return QString::number(b / 1024.0, 'f', 1) + " KiB";
  return QString::number(bytes) + " B";
}

QList<QPair<QString, QString>> DerivedValuesPanel::rows(const sae::RunConfig& config) {
  const Memory m = memory(config);
  const int64_t contexts = config.n_batches_in_buffer * config.store_batch_size;
  return {
      {"d_sae", count(config.derivedDSae())},
      {"total steps", count(config.totalSteps())},
      {"tokens per buffer", count(contexts * config.context_size)},
      {"contexts per buffer", count(contexts)},
      {"run name", QString::fromStdString(config.effectiveRunName())},
      {"parameters", count(m.parameters)},
      {"memory", QString("%1 (weights %2 + Adam %3 + buffer %4)")
                     .arg(bytesText(m.total()), bytesText(m.weightBytes), bytesText(m.adamBytes),
                          bytesText(m.bufferBytes))},
  };
}

void DerivedValuesPanel::setConfig(const sae::RunConfig* config) {
  setEnabled(config != nullptr);
  if (!config) return;
  const auto list = rows(*config);
  for (int i = 0; i < list.size() && i < values_.size(); ++i) {
    values_[i]->setText(list[i].second);
    values_[i]->setToolTip(list[i].second);
  }
}
