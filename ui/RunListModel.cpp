#include "RunListModel.h"

#include <QBrush>
#include <QColor>
#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QLocale>
#include <QSysInfo>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <limits>
#include <map>

#include <signal.h>
#include <nlohmann/json.hpp>

#include "runs/RunManifest.h"

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
// metrics.jsonl can grow to many megabytes; the last values are near its end.
constexpr qint64 kMetricsTailBytes = 1 << 20;

const char* const kRunJson = "run.json";
const char* const kConfigJson = "config.json";
const char* const kMetricsJsonl = "metrics.jsonl";
const char* const kSweepJson = "sweep.json";

bool looksLikeRun(const QDir& dir) {
  return dir.exists(kRunJson) || dir.exists(kConfigJson) || dir.exists(kMetricsJsonl);
}

bool processAlive(qint64 pid) {
  if (pid <= 0) return false;
  // Signal 0 checks existence only; EPERM means it exists but belongs to another user.
  return ::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM;
}

QDateTime parseIsoUtc(const std::string& text) {
  if (text.empty()) return {};
  QDateTime t = QDateTime::fromString(QString::fromStdString(text), Qt::ISODate);
  if (t.isValid() && t.timeSpec() == Qt::LocalTime) t.setTimeSpec(Qt::UTC);  // no zone: UTC
  return t;
}

QString ageText(qint64 seconds) {
  if (seconds < 120) return QString("%1 s").arg(seconds);
  if (seconds < 7200) return QString("%1 min").arg(seconds / 60);
  return QString("%1 h").arg(seconds / 3600);
}

void addProblem(RunListModel::RunInfo& info, const QString& problem) {
  info.problem += (info.problem.isEmpty() ? QString() : QStringLiteral("\n")) + problem;
}

// The last logged values of the four columns and the last token count, from the end of
// metrics.jsonl (lines are read backwards until every key has been seen).
struct MetricsTail {
  std::optional<double> mse, l0, explainedVariance, ceLossScore;
  qint64 tokens = -1;
};

std::optional<double> jsonNumber(const nlohmann::json& value) {
  if (value.is_number()) return value.get<double>();
  if (value.is_null()) return kNaN;  // the sink writes a non-finite value as null
  return std::nullopt;
}

MetricsTail readMetricsTail(const QString& path, QString* problem) {
  MetricsTail tail;
  QFile file(path);
  if (!file.open(QIODevice::ReadOnly)) {
    *problem = QString("cannot read %1: %2").arg(path, file.errorString());
    return tail;
  }
  const qint64 size = file.size();
  const qint64 from = std::max<qint64>(0, size - kMetricsTailBytes);
  file.seek(from);
  QByteArray bytes = file.readAll();
  if (from > 0) bytes = bytes.mid(bytes.indexOf('\n') + 1);  // drop the cut first line
  QList<QByteArray> lines = bytes.split('\n');
  const bool lastComplete = bytes.endsWith('\n');
  int badLines = 0;
  struct Wanted {
    const char* key;
    std::optional<double> MetricsTail::*field;
  };
  const Wanted wanted[] = {{"losses/mse_loss", &MetricsTail::mse},
                           {"metrics/l0", &MetricsTail::l0},
                           {"metrics/explained_variance", &MetricsTail::explainedVariance},
                           {"metrics/CE_loss_score", &MetricsTail::ceLossScore}};
  for (int i = static_cast<int>(lines.size()) - 1; i >= 0; --i) {
    const QByteArray& line = lines[i];
    if (line.trimmed().isEmpty()) continue;
    const nlohmann::json object =
        nlohmann::json::parse(line.begin(), line.end(), nullptr, /*allow_exceptions=*/false);
    if (!object.is_object()) {
      // The run may be writing its last line right now; anything else is worth a note.
      if (!(i == lines.size() - 1 && !lastComplete)) ++badLines;
      continue;
    }
    if (tail.tokens < 0) {
      for (const char* key : {"n_training_tokens", "details/n_training_tokens"}) {
        const auto it = object.find(key);
        if (it != object.end() && it->is_number()) {
          tail.tokens = static_cast<qint64>(it->get<double>());
          break;
        }
      }
    }
    bool all = true;
    for (const Wanted& w : wanted) {
      if ((tail.*w.field).has_value()) continue;
      const auto it = object.find(w.key);
      if (it != object.end()) tail.*w.field = jsonNumber(*it);
      all = all && (tail.*w.field).has_value();
    }
    if (all && tail.tokens >= 0) break;
  }
  if (badLines > 0) {
    *problem = QString("%1: %2 line%3 that %4 not a JSON object skipped")
                   .arg(path)
                   .arg(badLines)
                   .arg(badLines == 1 ? "" : "s")
                   .arg(badLines == 1 ? "is" : "are");
  }
  return tail;
}

QString numberText(const std::optional<double>& v, char format, int precision) {
  if (!v) return {};
  if (std::isnan(*v)) return QStringLiteral("nan");
  return QString::number(*v, format, precision);
}

// Exact below 10,000, else three significant digits with k/M/G: token budgets run to 1e9 and
// the column must stay narrow (the tooltip has the exact numbers).
QString tokenText(qint64 n) {
  if (n < 0) return QStringLiteral("?");
  if (n < 10000) return QLocale(QLocale::English).toString(n);
  const char* suffixes[] = {"k", "M", "G", "T"};
  double v = static_cast<double>(n) / 1000;
  int i = 0;
  while (v >= 999.5 && i < 3) {
    v /= 1000;
    ++i;
  }
  const int decimals = v < 9.995 ? 2 : v < 99.95 ? 1 : 0;
  return QString::number(v, 'f', decimals) + suffixes[i];
}

QColor statusColour(const QString& status) {
  if (status == "running") return QColor(21, 101, 192);
  if (status == "finished") return QColor(27, 94, 32);
  if (status == "failed" || status == "unreadable") return QColor(176, 0, 32);
  if (status == "killed?") return QColor(230, 81, 0);
  if (status == "stopped") return QColor(121, 85, 72);
  return QColor(97, 97, 97);
}

}  // namespace

RunListModel::RunListModel(QObject* parent) : QStandardItemModel(parent) {
  setColumnCount(Columns);
  setHorizontalHeaderLabels(
      {"Run", "Status", "Tokens", "Started", "MSE", "L0", "Expl. var.", "CE score"});
  const QStringList tips = {
      "The run folder's name; check a run to overlay its curves on the plots",
      "run.json's status; \"killed?\": run.json says running but its process is gone or it "
      "has not been updated for 2 minutes",
      "tokens trained / tokens to train",
      "when the run started (local time)",
      "last logged losses/mse_loss",
      "last logged metrics/l0 (active features per token)",
      "last logged metrics/explained_variance",
      "last logged metrics/CE_loss_score (language-model runs only)"};
  for (int c = 0; c < Columns; ++c)
    horizontalHeaderItem(c)->setToolTip(tips[c]);
}

void RunListModel::setRootFolder(const QString& folder) {
  root_ = folder;
  refresh();
}

RunListModel::RunInfo RunListModel::readRun(const QString& dir, const QDateTime& now) {
  RunInfo info;
  info.kind = Kind::Run;
  info.dir = QDir::cleanPath(QFileInfo(dir).absoluteFilePath());
  info.name = QFileInfo(info.dir).fileName();
  const QDir folder(info.dir);
  if (!QFileInfo(info.dir).isReadable() || !folder.exists()) {
    info.status = "unreadable";
    addProblem(info, QString("cannot read the folder %1 (check its permissions)").arg(info.dir));
    return info;
  }

  // config.json, as plain JSON: a config an older version wrote still gives its totals.
  nlohmann::json config;
  const QString configPath = folder.filePath(kConfigJson);
  if (QFile::exists(configPath)) {
    QFile file(configPath);
    if (file.open(QIODevice::ReadOnly)) {
      const QByteArray bytes = file.readAll();
      config = nlohmann::json::parse(bytes.begin(), bytes.end(), nullptr, false);
    }
    if (!config.is_object()) {
      addProblem(info, configPath + " is not a readable JSON object");
      config = nlohmann::json();
    }
  }

  const QString manifestPath = folder.filePath(kRunJson);
  if (QFile::exists(manifestPath)) {
    try {
      const sae::RunManifestData data = sae::RunManifest::load(manifestPath.toStdString());
      info.status = QString::fromStdString(data.status);
      info.message = QString::fromStdString(data.message);
      info.tokensDone = data.tokens_done;
      info.tokensTotal = data.total_tokens;
      info.started = parseIsoUtc(data.start_time);
      if (info.status == "running") {
        const QDateTime updated = parseIsoUtc(data.updated_time);
        const qint64 age = updated.isValid() ? updated.secsTo(now) : -1;
        const bool thisHost = QString::fromStdString(data.hostname) == QSysInfo::machineHostName();
        if (thisHost && data.pid > 0) {
          // On this host the process itself answers; a paused run does not rewrite run.json.
          if (!processAlive(data.pid)) {
            info.status = "killed?";
            info.message = QString(
                               "run.json says running, but its process %1 is gone; "
                               "Continue resumes it from its latest checkpoint")
                               .arg(data.pid);
          } else if (age > kStaleSeconds) {
            info.message = QString("process %1 is alive; run.json not updated for %2 (paused?)")
                               .arg(data.pid)
                               .arg(ageText(age));
          }
        } else if (age > kStaleSeconds || age < 0) {
          info.status = "killed?";
          info.message = age < 0 ? QString("run.json says running but has no update time")
                                 : QString(
                                       "run.json says running but was last updated %1 ago "
                                       "(on host %2)")
                                       .arg(ageText(age), QString::fromStdString(data.hostname));
        }
      }
    } catch (const std::exception& error) {
      info.status = "unreadable";
      addProblem(info, QString::fromUtf8(error.what()));
    }
  } else {
    const bool final = QFile::exists(folder.filePath("final/sae_weights.safetensors"));
    info.status = final ? "finished" : "unknown";
    info.message = "no run.json (a folder from an older version?): status guessed from its files";
    const QFileInfo configInfo(configPath);
    if (configInfo.exists()) info.started = configInfo.lastModified();
    if (config.is_object()) {
      qint64 total = 0;
      for (const char* key : {"training_tokens", "finetuning_tokens"}) {
        const auto it = config.find(key);
        if (it != config.end() && it->is_number_integer()) total += it->get<qint64>();
      }
      if (total > 0) info.tokensTotal = total;
    }
  }

  const QString metricsPath = folder.filePath(kMetricsJsonl);
  if (QFile::exists(metricsPath)) {
    QString problem;
    const MetricsTail tail = readMetricsTail(metricsPath, &problem);
    if (!problem.isEmpty()) addProblem(info, problem);
    info.mse = tail.mse;
    info.l0 = tail.l0;
    info.explainedVariance = tail.explainedVariance;
    info.ceLossScore = tail.ceLossScore;
    // A killed run's run.json can lag its last logged step (it is rewritten every 10 s).
    if (tail.tokens > info.tokensDone) info.tokensDone = tail.tokens;
  }
  if (!QFile::exists(configPath)) addProblem(info, configPath + " is missing");
  return info;
}

std::vector<RunListModel::RunInfo> RunListModel::scan(const QString& root, const QDateTime& now) {
  std::vector<RunInfo> out;
  const QDir dir(root);
  if (root.isEmpty() || !dir.exists()) return out;
  const QFileInfoList entries = dir.entryInfoList(QDir::Dirs | QDir::NoDotAndDotDot, QDir::Name);
  for (const QFileInfo& entry : entries) {
    const QDir sub(entry.absoluteFilePath());
    if (looksLikeRun(sub)) {
      out.push_back(readRun(entry.absoluteFilePath(), now));
      continue;
    }
    RunInfo group;
    group.dir = QDir::cleanPath(entry.absoluteFilePath());
    group.name = entry.fileName();
    if (!entry.isReadable()) {
      group.kind = Kind::NotARun;
      group.status = "unreadable";
      addProblem(group, "cannot read the folder " + group.dir + " (check its permissions)");
      out.push_back(group);
      continue;
    }
    // A sweep: sweep.json and one run folder per SAE inside.
    for (const QFileInfo& member :
         sub.entryInfoList(QDir::Dirs | QDir::NoDotAndDotDot, QDir::Name)) {
      if (looksLikeRun(QDir(member.absoluteFilePath())))
        group.members.push_back(readRun(member.absoluteFilePath(), now));
    }
    const bool hasSweepJson = sub.exists(kSweepJson);
    if (hasSweepJson || !group.members.empty()) {
      group.kind = Kind::Sweep;
      if (hasSweepJson) {
        QFile file(sub.filePath(kSweepJson));
        const QByteArray bytes = file.open(QIODevice::ReadOnly) ? file.readAll() : QByteArray();
        if (!nlohmann::json::accept(bytes.begin(), bytes.end()))
          addProblem(group, sub.filePath(kSweepJson) + " is not valid JSON");
      }
      std::map<QString, int> counts;
      for (const RunInfo& m : group.members) {
        ++counts[m.status];
        if (m.started.isValid() && (!group.started.isValid() || m.started < group.started))
          group.started = m.started;
        if (m.tokensDone >= 0)
          group.tokensDone = std::max<qint64>(0, group.tokensDone) + m.tokensDone;
        if (m.tokensTotal >= 0)
          group.tokensTotal = std::max<qint64>(0, group.tokensTotal) + m.tokensTotal;
      }
      QStringList parts;
      for (const auto& [status, n] : counts)
        parts << QString("%1 %2").arg(n).arg(status);
      group.status = parts.isEmpty() ? QString("no runs yet") : parts.join(", ");
      group.message = QString("a sweep of %1 run%2")
                          .arg(group.members.size())
                          .arg(group.members.size() == 1 ? "" : "s");
    } else {
      group.kind = Kind::NotARun;
      group.status = "not a run";
      addProblem(group, QString("%1 has no run.json, config.json or metrics.jsonl, and no "
                                "sweep.json: not a run folder")
                            .arg(group.dir));
    }
    out.push_back(group);
  }
  return out;
}

void RunListModel::refresh() {
  std::vector<RunInfo> fresh = scan(root_, QDateTime::currentDateTimeUtc());
  const bool inPlace = sameLayout(runs_, fresh) && rowCount() == static_cast<int>(fresh.size());
  runs_ = std::move(fresh);
  if (inPlace) {
    updating_ = true;
    for (int r = 0; r < rowCount(); ++r) {
      QList<QStandardItem*> row;
      for (int c = 0; c < Columns; ++c)
        row << item(r, c);
      fillRow(row, runs_[static_cast<size_t>(r)]);
      const auto& members = runs_[static_cast<size_t>(r)].members;
      for (int m = 0; m < static_cast<int>(members.size()); ++m) {
        QList<QStandardItem*> child;
        for (int c = 0; c < Columns; ++c)
          child << item(r, 0)->child(m, c);
        fillRow(child, members[static_cast<size_t>(m)]);
      }
    }
    updating_ = false;
  } else {
    rebuild();
  }
  // Runs that disappeared are no longer overlaid.
  const QSet<QString> before = checked_;
  for (const QString& dir : before) {
    if (indexOfRun(dir).isValid()) continue;
    checked_.remove(dir);
    Q_EMIT runCheckedChanged(dir, false);
  }
  Q_EMIT refreshed();
}

bool RunListModel::sameLayout(const std::vector<RunInfo>& a, const std::vector<RunInfo>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].dir != b[i].dir || a[i].kind != b[i].kind || !sameLayout(a[i].members, b[i].members))
      return false;
  }
  return true;
}

void RunListModel::rebuild() {
  updating_ = true;
  setRowCount(0);
  for (const RunInfo& info : runs_) {
    QList<QStandardItem*> row = makeRow(info);
    for (const RunInfo& member : info.members)
      row.front()->appendRow(makeRow(member));
    appendRow(row);
    if (info.kind == Kind::Sweep) updateSweepCheckState(row.front());
  }
  updating_ = false;
}

QList<QStandardItem*> RunListModel::makeRow(const RunInfo& info) {
  QList<QStandardItem*> row;
  for (int c = 0; c < Columns; ++c) {
    auto* item = new QStandardItem;
    item->setEditable(false);
    row << item;
  }
  if (info.kind != Kind::NotARun) {
    row.front()->setCheckable(true);
    row.front()->setCheckState(checked_.contains(info.dir) ? Qt::Checked : Qt::Unchecked);
  }
  fillRow(row, info);
  return row;
}

void RunListModel::fillRow(const QList<QStandardItem*>& row, const RunInfo& info) {
  const QLocale english(QLocale::English);
  const auto set = [&](int column, const QString& text, const QVariant& sortValue) {
    QStandardItem* item = row[column];
    if (item->text() != text) item->setText(text);
    item->setData(sortValue, SortRole);
    item->setData(info.dir, RunDirRole);
    item->setData(static_cast<int>(info.kind), KindRole);
  };
  set(Name, info.name, info.name.toLower());
  row[Name]->setData(info.status, StatusRole);
  set(Status, info.status, info.status);
  QString tokens;
  if (info.tokensDone >= 0 || info.tokensTotal >= 0) {
    tokens = QString("%1 / %2").arg(tokenText(info.tokensDone), tokenText(info.tokensTotal));
  }
  set(Tokens, tokens, info.tokensDone);
  set(Started,
      info.started.isValid() ? info.started.toLocalTime().toString("yyyy-MM-dd HH:mm") : QString(),
      info.started.isValid() ? info.started.toMSecsSinceEpoch() : qint64(0));
  const auto metric = [&](int column, const std::optional<double>& v, char format, int precision) {
    // Not logged sorts below every value; NaN sorts as not logged.
    const double sortValue = v && std::isfinite(*v) ? *v : -std::numeric_limits<double>::max();
    set(column, numberText(v, format, precision), sortValue);
    row[column]->setData(v ? *v : kNaN, ValueRole);
    row[column]->setTextAlignment(Qt::AlignRight | Qt::AlignVCenter);
  };
  metric(Mse, info.mse, 'g', 4);
  // L0 runs from a few hundred down to a few hundredths in an over-penalised run.
  metric(L0, info.l0, 'f', info.l0 && std::abs(*info.l0) < 1 ? 3 : 1);
  metric(ExplainedVariance, info.explainedVariance, 'f', 3);
  metric(CeLossScore, info.ceLossScore, 'f', 3);
  row[Tokens]->setTextAlignment(Qt::AlignRight | Qt::AlignVCenter);

  row[Status]->setForeground(QBrush(statusColour(info.status)));
  QFont font = row[Status]->font();
  font.setBold(info.status == "killed?" || info.status == "failed" || info.status == "unreadable");
  row[Status]->setFont(font);
  if (info.kind == Kind::NotARun) row[Name]->setForeground(QBrush(QColor(117, 117, 117)));
  if (info.kind == Kind::Sweep) {
    QFont bold = row[Name]->font();
    bold.setBold(true);
    row[Name]->setFont(bold);
  }

  QStringList tip{info.dir};
  if (info.tokensDone >= 0 || info.tokensTotal >= 0) {
    tip << QString("tokens %1 of %2")
               .arg(info.tokensDone >= 0 ? english.toString(info.tokensDone) : QString("?"),
                    info.tokensTotal >= 0 ? english.toString(info.tokensTotal) : QString("?"));
  }
  if (!info.message.isEmpty()) tip << info.message;
  if (!info.problem.isEmpty()) tip << "Problems:\n" + info.problem;
  const QString tooltip = tip.join("\n");
  for (QStandardItem* item : row)
    item->setToolTip(tooltip);
}

void RunListModel::updateSweepCheckState(QStandardItem* sweep) {
  int on = 0;
  for (int r = 0; r < sweep->rowCount(); ++r)
    on += checked_.contains(sweep->child(r, 0)->data(RunDirRole).toString()) ? 1 : 0;
  const Qt::CheckState state = on == 0                   ? Qt::Unchecked
                               : on == sweep->rowCount() ? Qt::Checked
                                                         : Qt::PartiallyChecked;
  const bool was = updating_;
  updating_ = true;
  if (sweep->checkState() != state) sweep->setCheckState(state);
  updating_ = was;
}

const RunListModel::RunInfo* RunListModel::info(const QModelIndex& index) const {
  if (!index.isValid()) return nullptr;
  const QString dir = index.siblingAtColumn(0).data(RunDirRole).toString();
  for (const RunInfo& top : runs_) {
    if (top.dir == dir) return &top;
    for (const RunInfo& member : top.members)
      if (member.dir == dir) return &member;
  }
  return nullptr;
}

QModelIndex RunListModel::indexOfRun(const QString& runDir) const {
  const QString dir = QDir::cleanPath(QFileInfo(runDir).absoluteFilePath());
  for (int r = 0; r < rowCount(); ++r) {
    QStandardItem* top = item(r, 0);
    if (top->data(RunDirRole).toString() == dir) return top->index();
    for (int m = 0; m < top->rowCount(); ++m)
      if (top->child(m, 0)->data(RunDirRole).toString() == dir) return top->child(m, 0)->index();
  }
  return {};
}

QStringList RunListModel::checkedRuns() const {
  QStringList out(checked_.begin(), checked_.end());
  out.sort();
  return out;
}

bool RunListModel::isChecked(const QString& runDir) const {
  return checked_.contains(QDir::cleanPath(QFileInfo(runDir).absoluteFilePath()));
}

int RunListModel::runCount() const {
  int n = 0;
  for (const RunInfo& top : runs_) {
    if (top.kind == Kind::Run) ++n;
    n += static_cast<int>(top.members.size());
  }
  return n;
}

bool RunListModel::setRunChecked(const QString& runDir, bool checked) {
  const QModelIndex index = indexOfRun(runDir);
  if (!index.isValid() || Kind(index.data(KindRole).toInt()) != Kind::Run) return false;
  const QString dir = index.data(RunDirRole).toString();
  if (checked_.contains(dir) == checked) return true;
  if (checked) {
    checked_.insert(dir);
  } else {
    checked_.remove(dir);
  }
  const bool was = updating_;
  updating_ = true;
  QStandardItem* item = itemFromIndex(index);
  item->setCheckState(checked ? Qt::Checked : Qt::Unchecked);
  if (QStandardItem* parent = item->parent()) updateSweepCheckState(parent);
  updating_ = was;
  Q_EMIT runCheckedChanged(dir, checked);
  return true;
}

bool RunListModel::setData(const QModelIndex& index, const QVariant& value, int role) {
  if (updating_ || role != Qt::CheckStateRole || index.column() != Name)
    return QStandardItemModel::setData(index, value, role);
  const bool on = static_cast<Qt::CheckState>(value.toInt()) != Qt::Unchecked;
  QStandardItem* item = itemFromIndex(index);
  if (!item) return false;
  switch (Kind(item->data(KindRole).toInt())) {
    case Kind::Sweep: {
      QStringList members;
      for (int r = 0; r < item->rowCount(); ++r)
        members << item->child(r, 0)->data(RunDirRole).toString();
      for (const QString& dir : members)
        setRunChecked(dir, on);
      updateSweepCheckState(item);
      return true;
    }
    case Kind::Run:
      return setRunChecked(item->data(RunDirRole).toString(), on);
    case Kind::NotARun:
      break;
  }
  return false;
}
