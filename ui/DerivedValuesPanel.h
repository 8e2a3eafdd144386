#pragma once
// What a config implies before anything is trained: SAE width, steps, buffer size, run name,
// parameter count and a memory estimate. rows() is widget-free so tests can check the numbers.
#include <QList>
#include <QPair>
#include <QString>
#include <QWidget>

#include <cstdint>

#include "config/RunConfig.h"

class QFormLayout;
class QLabel;

class DerivedValuesPanel : public QWidget {
  Q_OBJECT

 public:
  explicit DerivedValuesPanel(QWidget* parent = nullptr);

  // Shows the values of `config`; nullptr greys the panel out (the form is invalid).
  void setConfig(const sae::RunConfig* config);

  struct Memory {
    int64_t parameters = 0;
    int64_t weightBytes = 0;  // parameters in the SAE's dtype
    int64_t adamBytes = 0;    // Adam's two moment tensors, same dtype
    int64_t bufferBytes = 0;  // the activation buffer, float32
    int64_t total() const { return weightBytes + adamBytes + bufferBytes; }
  };
  static Memory memory(const sae::RunConfig& config);
  // (label, value) pairs in display order.
  static QList<QPair<QString, QString>> rows(const sae::RunConfig& config);
  static QString bytesText(int64_t bytes);

 private:
  QFormLayout* layout_;
  QList<QLabel*> values_;
};
