#include "PresetStore.h"

#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QStandardPaths>

#include "config/AtomicFile.h"
#include "config/ConfigError.h"

PresetStore::PresetStore(QString folder) : folder_(folder.isEmpty() ? defaultFolder() : folder) {}

QString PresetStore::defaultFolder() {
  return QStandardPaths::writableLocation(QStandardPaths::AppConfigLocation) + "/presets";
}

QString PresetStore::pathOf(const QString& name) const {
  return QDir(folder_).filePath(name + ".json");
}

QString PresetStore::nameProblem(const QString& name) {
  if (name.trimmed().isEmpty()) return QStringLiteral("a preset name cannot be empty");
  if (name != name.trimmed())
    return QStringLiteral("a preset name cannot start or end with spaces");
  if (name.startsWith('.')) return QStringLiteral("a preset name cannot start with '.'");
  static const QString forbidden = QStringLiteral("/\\:*?\"<>|");
  for (const QChar c : name) {
    if (forbidden.contains(c) || c.unicode() < 32) {
      return QStringLiteral("a preset name cannot contain '%1' (it becomes a file name)").arg(c);
    }
  }
  return {};
}

nlohmann::json PresetStore::readJsonObject(const QString& path) {
  QFile file(path);
  if (!file.open(QIODevice::ReadOnly)) {
    throw sae::ConfigError("cannot read preset file '" + path.toStdString() +
                           "': " + file.errorString().toStdString());
  }
  const QByteArray bytes = file.readAll();
  nlohmann::json object;
  try {
    object = nlohmann::json::parse(bytes.constData(), bytes.constData() + bytes.size());
  } catch (const nlohmann::json::parse_error& error) {
    throw sae::ConfigError("preset file '" + path.toStdString() +
                           "' is not valid JSON: " + error.what() + "; fix or delete the file");
  }
  if (!object.is_object()) {
    throw sae::ConfigError("preset file '" + path.toStdString() +
                           "' must hold a JSON object of config fields, not " +
                           std::string(object.type_name()));
  }
  return object;
}

void PresetStore::writeJson(const QString& path, const nlohmann::json& config) {
  sae::AtomicFile::write(path.toStdString(), config.dump(2) + "\n");
}

QStringList PresetStore::names() {
  problems_.clear();
  QStringList result;
  const QDir dir(folder_);
  for (const QFileInfo& info : dir.entryInfoList({"*.json"}, QDir::Files, QDir::Name)) {
    try {
      readJsonObject(info.filePath());
      result << info.completeBaseName();
    } catch (const std::exception& error) {
      problems_ << QString::fromStdString(error.what());
    }
  }
  return result;
}

bool PresetStore::contains(const QString& name) const {
  return nameProblem(name).isEmpty() && QFileInfo::exists(pathOf(name));
}

nlohmann::json PresetStore::load(const QString& name) const {
  if (!contains(name)) {
    throw sae::ConfigError("no user preset named '" + name.toStdString() + "' in " +
                           folder_.toStdString());
  }
  return readJsonObject(pathOf(name));
}

void PresetStore::save(const QString& name, const nlohmann::json& config) {
  const QString problem = nameProblem(name);
  if (!problem.isEmpty()) {
    throw sae::ConfigError("cannot save preset '" + name.toStdString() +
                           "': " + problem.toStdString());
  }
  if (!config.is_object()) throw sae::ConfigError("a preset must be a JSON object");
  writeJson(pathOf(name), config);
}

void PresetStore::rename(const QString& from, const QString& to) {
  const QString problem = nameProblem(to);
  if (!problem.isEmpty()) {
    throw sae::ConfigError("cannot rename to '" + to.toStdString() + "': " + problem.toStdString());
  }
  if (!contains(from)) throw sae::ConfigError("no user preset named '" + from.toStdString() + "'");
  if (from == to) return;
  if (QFileInfo::exists(pathOf(to))) {
    throw sae::ConfigError("cannot rename '" + from.toStdString() + "' to '" + to.toStdString() +
                           "': a preset with that name exists; delete it first");
  }
  if (!QFile::rename(pathOf(from), pathOf(to))) {
    throw std::runtime_error("cannot rename " + pathOf(from).toStdString() + " to " +
                             pathOf(to).toStdString());
  }
}

void PresetStore::remove(const QString& name) {
  if (!contains(name)) throw sae::ConfigError("no user preset named '" + name.toStdString() + "'");
  QFile file(pathOf(name));
  if (!file.remove()) {
    throw std::runtime_error("cannot delete " + pathOf(name).toStdString() + ": " +
                             file.errorString().toStdString());
  }
}

QString PresetStore::importFile(const QString& path, const QString& name) {
  const nlohmann::json object = readJsonObject(path);
  const QString target = name.isEmpty() ? QFileInfo(path).completeBaseName() : name;
  save(target, object);
  return target;
}

void PresetStore::exportTo(const QString& name, const QString& path) const {
  writeJson(path, load(name));
}
