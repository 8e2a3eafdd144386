#pragma once
// The user's own presets: one JSON file per preset in a folder (by default
// QStandardPaths::AppConfigLocation/presets). Widget-free so it can be tested on its own. Built-in
// presets (sae::PresetLibrary) are read-only and live elsewhere; this class never touches them.
#include <QString>
#include <QStringList>

#include <nlohmann/json.hpp>

class PresetStore {
 public:
  // An empty folder means the default location.
  explicit PresetStore(QString folder = QString());

  static QString defaultFolder();
  const QString& folder() const { return folder_; }

  // Names of the readable presets, sorted. Files that are not a JSON object are skipped and
  // described in problems() (file name and parser message), so one bad file never hides the rest.
  QStringList names();
  const QStringList& problems() const { return problems_; }

  bool contains(const QString& name) const;
  // The preset's JSON object. Throws sae::ConfigError naming the file when it cannot be read.
  nlohmann::json load(const QString& name) const;
  // Writes the preset atomically (temporary file + rename). Throws sae::ConfigError for a bad
  // name, std::runtime_error when the file cannot be written.
  void save(const QString& name, const nlohmann::json& config);
  // Renames a preset; refuses to overwrite an existing one.
  void rename(const QString& from, const QString& to);
  void remove(const QString& name);
  // Copies a JSON file into the store under `name` (empty: the file's base name) after checking
  // it is a JSON object; returns the name used.
  QString importFile(const QString& path, const QString& name = QString());
  // Writes the preset to an arbitrary path, atomically.
  void exportTo(const QString& name, const QString& path) const;

  // Empty when `name` can be used as a preset name, else why not.
  static QString nameProblem(const QString& name);
  // Reads and parses a JSON object; throws sae::ConfigError naming the file on failure.
  static nlohmann::json readJsonObject(const QString& path);
  static void writeJson(const QString& path, const nlohmann::json& config);

 private:
  QString pathOf(const QString& name) const;
  QString folder_;
  QStringList problems_;
};
