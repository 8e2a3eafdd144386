#pragma once
// The config editor, generated from sae::ConfigSchema: one page per schema group, one row per
// field with the editor its type calls for, the field's help as tooltip and its validation
// message right under it. Every edit re-validates the whole config with the core's own rules
// (RunConfig::fromJson) so the form never disagrees with sae-train.
#include <QHash>
#include <QString>
#include <QStringList>
#include <QWidget>

#include <optional>

#include <nlohmann/json.hpp>

#include "config/ConfigSchema.h"
#include "config/RunConfig.h"

class QCheckBox;
class QLabel;
class QToolBox;

class ConfigForm : public QWidget {
  Q_OBJECT

 public:
  explicit ConfigForm(QWidget* parent = nullptr);

  // Shows a config: fields missing from `object` get their defaults; keys that are not config
  // fields are listed in the general message. Does not emit edited().
  void setJson(const nlohmann::json& object);
  // Every field's current value, as a preset file stores it (d_sae as null: it is derived).
  nlohmann::json json() const;

  bool isValid() const { return config_.has_value(); }
  // The parsed config of the last valid state; nullopt while the form is invalid.
  const std::optional<sae::RunConfig>& config() const { return config_; }
  // Every current problem as "field: message".
  QStringList problems() const;
  // The message shown next to a field ("" when it is fine), its editor, and, for nullable fields,
  // the check box that switches between null and a value. For tests and the main window.
  QString messageFor(const QString& field) const;
  QWidget* editorFor(const QString& field) const;
  QCheckBox* nullToggleFor(const QString& field) const;

  void setEditable(bool editable);

 Q_SIGNALS:
  // The user changed a value (not emitted by setJson).
  void edited();
  // After every re-validation.
  void validityChanged(bool valid);

 private:
  struct Row {
    const sae::ConfigField* field = nullptr;
    QWidget* editor = nullptr;
    QCheckBox* nullToggle = nullptr;
    QLabel* message = nullptr;
    int page = 0;
  };

  QWidget* makeEditor(Row& row);
  void setRowValue(Row& row, const nlohmann::json& value);
  // The row's value; sets *error when the text cannot be turned into a value (bad JSON).
  nlohmann::json rowValue(const Row& row, QString* error) const;
  void onUserEdit();
  void revalidate();

  QToolBox* pages_ = nullptr;
  QLabel* general_ = nullptr;
  QStringList groupNames_;
  std::vector<Row> rows_;
  QHash<QString, int> rowIndex_;
  QStringList unknownKeys_;
  QStringList problems_;
  std::optional<sae::RunConfig> config_;
  bool loading_ = false;
};
