#include "ConfigForm.h"

#include <QCheckBox>
#include <QComboBox>
#include <QDoubleSpinBox>
#include <QFileDialog>
#include <QGridLayout>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QToolBox>
#include <QToolButton>
#include <QVBoxLayout>

#include <cmath>

#include "ScientificSpinBox.h"
#include "config/ConfigError.h"

namespace {

// A double holds every integer up to 2^53 exactly; that bounds the integer spin boxes.
constexpr double kIntLimit = 9007199254740992.0;
const char* const kNoneChoice = "(none)";

// d_sae is derived from d_in * expansion_factor (SAELens's __post_init__): shown, not edited.
bool isDerived(const sae::ConfigField& field) {
  return field.name == "d_sae";
}

// Folders are picked with a folder dialog; dataset_path may also be a single file.
bool picksFolder(const sae::ConfigField& field) {
  return field.name != "dataset_path";
}

}  // namespace

ConfigForm::ConfigForm(QWidget* parent) : QWidget(parent) {
  auto* layout = new QVBoxLayout(this);
  layout->setContentsMargins(0, 0, 0, 0);
  general_ = new QLabel(this);
  general_->setObjectName("formGeneralMessage");
  general_->setWordWrap(true);
  general_->setStyleSheet("color: #b00020;");
  general_->hide();
  layout->addWidget(general_);
  pages_ = new QToolBox(this);
  pages_->setObjectName("configPages");
  layout->addWidget(pages_, 1);

  const auto& fields = sae::ConfigSchema::fields();
  std::vector<QGridLayout*> grids;
  for (const auto& group : sae::ConfigSchema::groups()) {
    auto* page = new QWidget;
    auto* grid = new QGridLayout(page);
    grid->setColumnStretch(1, 1);
    grid->setVerticalSpacing(2);
    grids.push_back(grid);
    // "Model & hook": a lone & would turn the next letter into a mnemonic.
    groupNames_ << QString::fromStdString(group).replace("&", "&&");
    pages_->addItem(page, groupNames_.last());
  }
  rows_.reserve(fields.size());
  for (const auto& field : fields) {
    Row row;
    row.field = &field;
    const auto groupIt = std::find(sae::ConfigSchema::groups().begin(),
                                   sae::ConfigSchema::groups().end(), field.group);
    row.page = static_cast<int>(groupIt - sae::ConfigSchema::groups().begin());
    if (row.page >= static_cast<int>(grids.size())) row.page = static_cast<int>(grids.size()) - 1;
    QGridLayout* grid = grids[static_cast<size_t>(row.page)];
    const int r = grid->rowCount();
    const QString help = QString::fromStdString(field.help);
    auto* label = new QLabel(QString::fromStdString(field.name));
    label->setToolTip(help);
    grid->addWidget(label, r, 0, Qt::AlignLeft | Qt::AlignVCenter);
    QWidget* editorRow = makeEditor(row);
    editorRow->setToolTip(help);
    grid->addWidget(editorRow, r, 1);
    row.message = new QLabel;
    row.message->setObjectName("message_" + QString::fromStdString(field.name));
    row.message->setWordWrap(true);
    row.message->setStyleSheet("color: #b00020;");
    row.message->hide();
    grid->addWidget(row.message, r + 1, 0, 1, 2);
    rowIndex_.insert(QString::fromStdString(field.name), static_cast<int>(rows_.size()));
    rows_.push_back(row);
  }
  for (QGridLayout* grid : grids)
    grid->setRowStretch(grid->rowCount(), 1);
  setJson(nlohmann::json::object());
}

QWidget* ConfigForm::makeEditor(Row& row) {
  const sae::ConfigField& field = *row.field;
  auto* container = new QWidget;
  auto* box = new QHBoxLayout(container);
  box->setContentsMargins(0, 0, 0, 0);
  const QString name = QString::fromStdString(field.name);
  const bool hasChoices = !field.choices.empty();
  // Nullable fields without a choice list get a check box: unchecked means null (SAELens's None).
  if (field.nullable() && !hasChoices && !isDerived(field)) {
    row.nullToggle = new QCheckBox;
    row.nullToggle->setObjectName("null_" + name);
    row.nullToggle->setToolTip("unchecked: null (" + QString::fromStdString(field.help) + ")");
    box->addWidget(row.nullToggle);
    connect(row.nullToggle, &QCheckBox::toggled, this, [this] { onUserEdit(); });
  }
  QWidget* editor = nullptr;
  if (isDerived(field)) {
    auto* value = new QLineEdit;
    value->setReadOnly(true);
    value->setFrame(false);
    editor = value;
  } else if (hasChoices) {
    auto* combo = new QComboBox;
    if (field.nullable()) combo->addItem(kNoneChoice);
    for (const auto& choice : field.choices)
      combo->addItem(QString::fromStdString(choice));
    connect(combo, &QComboBox::currentIndexChanged, this, [this] { onUserEdit(); });
    editor = combo;
  } else {
    switch (field.type()) {
      case sae::FieldType::Bool: {
        auto* check = new QCheckBox;
        connect(check, &QCheckBox::toggled, this, [this] { onUserEdit(); });
        editor = check;
        break;
      }
      case sae::FieldType::Int: {
        auto* spin = new QDoubleSpinBox;
        spin->setDecimals(0);
        spin->setRange(field.minimum.value_or(-kIntLimit), field.maximum.value_or(kIntLimit));
        spin->setKeyboardTracking(true);
        connect(spin, &QDoubleSpinBox::valueChanged, this, [this] { onUserEdit(); });
        editor = spin;
        break;
      }
      case sae::FieldType::Float: {
        auto* spin = new ScientificSpinBox;
        spin->setRange(field.minimum.value_or(-1e300), field.maximum.value_or(1e300));
        connect(spin, &QDoubleSpinBox::valueChanged, this, [this] { onUserEdit(); });
        editor = spin;
        break;
      }
      case sae::FieldType::String:
      case sae::FieldType::Json: {
        auto* line = new QLineEdit;
        connect(line, &QLineEdit::textEdited, this, [this] { onUserEdit(); });
        editor = line;
        break;
      }
    }
  }
  editor->setObjectName("field_" + name);
  editor->setMinimumWidth(120);
  box->addWidget(editor, 1);
  row.editor = editor;
  if (row.nullToggle) {
    connect(row.nullToggle, &QCheckBox::toggled, editor, &QWidget::setEnabled);
  }
  if (field.isPath) {
    auto* pick = new QToolButton;
    pick->setText("...");
    pick->setToolTip(picksFolder(field) ? "choose a folder" : "choose a file");
    auto* line = qobject_cast<QLineEdit*>(editor);
    connect(pick, &QToolButton::clicked, this, [this, line, &field] {
      const QString start = line ? line->text() : QString();
      const QString path =
          picksFolder(field)
              ? QFileDialog::getExistingDirectory(this, QString::fromStdString(field.name), start)
              : QFileDialog::getOpenFileName(this, QString::fromStdString(field.name), start);
      if (path.isEmpty() || !line) return;
      line->setText(path);
      const int index = rowIndex_.value(QString::fromStdString(field.name), -1);
      if (index >= 0 && rows_[static_cast<size_t>(index)].nullToggle) {
        rows_[static_cast<size_t>(index)].nullToggle->setChecked(true);
      }
      onUserEdit();
    });
    box->addWidget(pick);
  }
  return container;
}

void ConfigForm::setRowValue(Row& row, const nlohmann::json& value) {
  const sae::ConfigField& field = *row.field;
  if (isDerived(field)) return;  // refreshed by revalidate()
  if (row.nullToggle) {
    row.nullToggle->setChecked(!value.is_null());
    row.editor->setEnabled(!value.is_null());
    if (value.is_null()) return;
  }
  if (auto* combo = qobject_cast<QComboBox*>(row.editor)) {
    QString text = value.is_null()     ? QString(kNoneChoice)
                   : value.is_string() ? QString::fromStdString(value.get<std::string>())
                                       : QString::fromStdString(value.dump());
    int index = combo->findText(text);
    if (index < 0) {
      // Keep a value outside the choices (e.g. "Constant" for a case-insensitive field, or a
      // wrong one) so it round-trips and validation can name it.
      combo->addItem(text);
      index = combo->count() - 1;
    }
    combo->setCurrentIndex(index);
  } else if (auto* check = qobject_cast<QCheckBox*>(row.editor)) {
    check->setChecked(value.is_boolean() && value.get<bool>());
  } else if (auto* spin = qobject_cast<QDoubleSpinBox*>(row.editor)) {
    if (value.is_number()) spin->setValue(value.get<double>());
  } else if (auto* line = qobject_cast<QLineEdit*>(row.editor)) {
    if (field.type() == sae::FieldType::Json) {
      line->setText(QString::fromStdString(value.dump()));
    } else {
      line->setText(value.is_string() ? QString::fromStdString(value.get<std::string>())
                                      : QString::fromStdString(value.dump()));
    }
  }
}

nlohmann::json ConfigForm::rowValue(const Row& row, QString* error) const {
  const sae::ConfigField& field = *row.field;
  if (isDerived(field)) return nullptr;
  if (row.nullToggle && !row.nullToggle->isChecked()) return nullptr;
  if (auto* combo = qobject_cast<QComboBox*>(row.editor)) {
    const QString text = combo->currentText();
    if (text == kNoneChoice) return nullptr;
    return text.toStdString();
  }
  if (auto* check = qobject_cast<QCheckBox*>(row.editor)) return check->isChecked();
  if (auto* spin = qobject_cast<QDoubleSpinBox*>(row.editor)) {
    const double v = spin->value();
    if (field.type() == sae::FieldType::Int) return static_cast<int64_t>(std::llround(v));
    return v;
  }
  if (auto* line = qobject_cast<QLineEdit*>(row.editor)) {
    const std::string text = line->text().toStdString();
    if (field.type() != sae::FieldType::Json) return text;
    try {
      return nlohmann::json::parse(text.empty() ? std::string("{}") : text);
    } catch (const nlohmann::json::parse_error& e) {
      if (error) *error = QString("not valid JSON (%1)").arg(e.what());
      return nlohmann::json::object();
    }
  }
  return nullptr;
}

void ConfigForm::setJson(const nlohmann::json& object) {
  loading_ = true;
  unknownKeys_.clear();
  if (object.is_object()) {
    for (auto it = object.begin(); it != object.end(); ++it) {
      if (!rowIndex_.contains(QString::fromStdString(it.key()))) {
        unknownKeys_ << QString::fromStdString(it.key());
      }
    }
  }
  for (auto& row : rows_) {
    const auto it = object.is_object() ? object.find(row.field->name) : object.end();
    const nlohmann::json value =
        object.is_object() && it != object.end() ? *it : row.field->defaultValue();
    setRowValue(row, value);
  }
  loading_ = false;
  revalidate();
}

nlohmann::json ConfigForm::json() const {
  nlohmann::json object = nlohmann::json::object();
  for (const auto& row : rows_)
    object[row.field->name] = rowValue(row, nullptr);
  return object;
}

void ConfigForm::onUserEdit() {
  if (loading_) return;
  revalidate();
  Q_EMIT edited();
}

void ConfigForm::revalidate() {
  QHash<QString, QStringList> messages;
  QStringList general;
  nlohmann::json object = nlohmann::json::object();
  for (const auto& row : rows_) {
    QString error;
    object[row.field->name] = rowValue(row, &error);
    if (!error.isEmpty()) messages[QString::fromStdString(row.field->name)] << error;
  }
  for (const QString& key : unknownKeys_) {
    const std::string closest = sae::ConfigSchema::closestName(key.toStdString());
    general << QString("unknown field '%1' in the loaded preset was ignored (did you mean '%2'?)")
                   .arg(key, QString::fromStdString(closest));
  }
  config_.reset();
  if (messages.isEmpty()) {
    try {
      config_ = sae::RunConfig::fromJson(object, "form");
    } catch (const sae::ConfigError& error) {
      if (error.issues().empty()) general << QString::fromStdString(error.what());
      for (const auto& issue : error.issues()) {
        const QString field = QString::fromStdString(issue.field);
        if (rowIndex_.contains(field)) {
          messages[field] << QString::fromStdString(issue.message);
        } else {
          general << QString::fromStdString(issue.message);
        }
      }
    } catch (const std::exception& error) {
      general << QString::fromStdString(error.what());
    }
  }

  problems_.clear();
  std::vector<int> pageProblems(static_cast<size_t>(groupNames_.size()), 0);
  for (auto& row : rows_) {
    const QString name = QString::fromStdString(row.field->name);
    const QStringList list = messages.value(name);
    row.message->setText(list.join('\n'));
    row.message->setVisible(!list.isEmpty());
    for (const QString& m : list)
      problems_ << (m.startsWith(name + ":") ? m : name + ": " + m);
    pageProblems[static_cast<size_t>(row.page)] += static_cast<int>(list.size());
    if (isDerived(*row.field)) {
      auto* line = static_cast<QLineEdit*>(row.editor);
      sae::RunConfig derived;
      derived.d_in = object.value("d_in", nlohmann::json(0)).get<int64_t>();
      derived.expansion_factor = object.value("expansion_factor", nlohmann::json(0)).get<int64_t>();
      line->setText(QString::number(derived.derivedDSae()) + "  (d_in x expansion_factor)");
    }
  }
  for (int i = 0; i < groupNames_.size(); ++i) {
    const int n = pageProblems[static_cast<size_t>(i)];
    pages_->setItemText(
        i, n == 0
               ? groupNames_[i]
               : QString("%1  (%2 problem%3)").arg(groupNames_[i]).arg(n).arg(n == 1 ? "" : "s"));
  }
  problems_ = general + problems_;
  general_->setText(general.join('\n'));
  general_->setVisible(!general.isEmpty());
  Q_EMIT validityChanged(config_.has_value());
}

QStringList ConfigForm::problems() const {
  return problems_;
}

QString ConfigForm::messageFor(const QString& field) const {
  const int index = rowIndex_.value(field, -1);
  return index < 0 ? QString() : rows_[static_cast<size_t>(index)].message->text();
}

QWidget* ConfigForm::editorFor(const QString& field) const {
  const int index = rowIndex_.value(field, -1);
  return index < 0 ? nullptr : rows_[static_cast<size_t>(index)].editor;
}

QCheckBox* ConfigForm::nullToggleFor(const QString& field) const {
  const int index = rowIndex_.value(field, -1);
  return index < 0 ? nullptr : rows_[static_cast<size_t>(index)].nullToggle;
}

void ConfigForm::setEditable(bool editable) {
  pages_->setEnabled(editable);
}
