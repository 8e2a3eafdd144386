#include "FeatureTableModel.h"

#include <QColor>

#include <cmath>
#include <limits>

FeatureTableModel::FeatureTableModel(QObject* parent) : QAbstractTableModel(parent) {}

void FeatureTableModel::setData(std::shared_ptr<const sae::FeatureBrowserData> data) {
  beginResetModel();
  data_ = std::move(data);
  searchText_.clear();
  if (data_) {
    for (const auto& r : data_->features) {
      QString text = QString::number(r.index);
      for (const auto& c : r.contexts)
        text += QLatin1Char('\n') + QString::fromStdString(data_->contextText(c));
      searchText_ << text.toLower();
    }
  }
  endResetModel();
}

int FeatureTableModel::rowCount(const QModelIndex& parent) const {
  return parent.isValid() || !data_ ? 0 : static_cast<int>(data_->features.size());
}

int FeatureTableModel::columnCount(const QModelIndex& parent) const {
  return parent.isValid() ? 0 : ColumnCount;
}

double FeatureTableModel::log10Density(double density) {
  return density > 0 ? std::log10(density) : -std::numeric_limits<double>::infinity();
}

QString FeatureTableModel::visibleText(const std::string& text) {
  QString out = QString::fromStdString(text);
  if (!out.isEmpty() && out.trimmed().isEmpty() && !out.contains(QLatin1Char('\n'))) {
    out.replace(QLatin1Char(' '), QString::fromUtf8("\u2423"));
  }
  out.replace(QLatin1String("\r\n"), QString::fromUtf8("\u21b5"));
  out.replace(QLatin1Char('\n'), QString::fromUtf8("\u21b5"));
  out.replace(QLatin1Char('\r'), QString::fromUtf8("\u240d"));
  out.replace(QLatin1Char('\t'), QString::fromUtf8("\u21e5"));
  return out;
}

QVariant FeatureTableModel::data(const QModelIndex& index, int role) const {
  if (!data_ || !index.isValid() || index.row() >= rowCount()) return {};
  const sae::FeatureRecord& r = data_->features[static_cast<size_t>(index.row())];
  if (role == FeatureIndexRole) return QVariant::fromValue<qlonglong>(r.index);
  if (role == SearchRole) return searchText_.value(index.row());
  const bool dead = r.firingCount == 0;
  switch (index.column()) {
    case IndexColumn:
      if (role == Qt::DisplayRole || role == SortRole)
        return QVariant::fromValue<qlonglong>(r.index);
      break;
    case DensityColumn:
      if (role == SortRole) return log10Density(r.density);
      if (role == Qt::DisplayRole) {
        return dead ? tr("dead") : QString::number(log10Density(r.density), 'f', 2);
      }
      if (role == Qt::ToolTipRole) {
        return tr("fires on %1 of %2 scanned tokens (density %3)")
            .arg(r.firingCount)
            .arg(data_->tokensScanned)
            .arg(r.density, 0, 'g', 4);
      }
      break;
    case MaxActivationColumn:
      if (role == SortRole) return r.maxActivation;
      if (role == Qt::DisplayRole) return QString::number(r.maxActivation, 'g', 4);
      break;
    case TopTokenColumn: {
      const QString token =
          r.contexts.empty()
              ? QString()
              : visibleText(data_->tokenText(r.contexts.front().tokens[static_cast<size_t>(
                    r.contexts.front().firingIndex)]));
      if (role == Qt::DisplayRole || role == SortRole) return token;
      if (role == Qt::ToolTipRole && !r.contexts.empty()) {
        return visibleText(data_->contextText(r.contexts.front()));
      }
      break;
    }
    default:
      break;
  }
  if (role == Qt::TextAlignmentRole && index.column() != TopTokenColumn) {
    return int(Qt::AlignRight | Qt::AlignVCenter);
  }
  if (role == Qt::ForegroundRole && dead) return QColor(150, 150, 150);
  return {};
}

QVariant FeatureTableModel::headerData(int section, Qt::Orientation orientation, int role) const {
  if (orientation != Qt::Horizontal) return {};
  if (role == Qt::DisplayRole) {
    switch (section) {
      case IndexColumn:
        return tr("Feature");
      case DensityColumn:
        return tr("log10 density");
      case MaxActivationColumn:
        return tr("Max act");
      case TopTokenColumn:
        return tr("Top token");
      default:
        return {};
    }
  }
  if (role == Qt::ToolTipRole) {
    switch (section) {
      case DensityColumn:
        return tr("log10 of the fraction of scanned tokens where the feature fires");
      case MaxActivationColumn:
        return tr("largest activation over the scanned tokens");
      case TopTokenColumn:
        return tr("the token of the strongest context");
      default:
        return {};
    }
  }
  return {};
}
