#pragma once
// The feature browser's table: one row per SAE feature with its index, log10 density, max
// activation and the token its strongest context fires on. Display text for the eye, SortRole
// numbers for sorting (QSortFilterProxyModel::setSortRole), SearchRole text (the index and every
// top context) for the search box (setFilterRole).
#include <QAbstractTableModel>
#include <QString>

#include <memory>

#include "analysis/FeatureBrowserData.h"

class FeatureTableModel : public QAbstractTableModel {
  Q_OBJECT

 public:
  enum Column { IndexColumn, DensityColumn, MaxActivationColumn, TopTokenColumn, ColumnCount };
  enum Role { SortRole = Qt::UserRole + 1, SearchRole, FeatureIndexRole };

  explicit FeatureTableModel(QObject* parent = nullptr);

  void setData(std::shared_ptr<const sae::FeatureBrowserData> data);
  const std::shared_ptr<const sae::FeatureBrowserData>& browserData() const { return data_; }

  int rowCount(const QModelIndex& parent = QModelIndex()) const override;
  int columnCount(const QModelIndex& parent = QModelIndex()) const override;
  QVariant data(const QModelIndex& index, int role = Qt::DisplayRole) const override;
  QVariant headerData(int section, Qt::Orientation orientation,
                      int role = Qt::DisplayRole) const override;

  // Token text with its whitespace made visible: newline "↵", tab "⇥", carriage return "␍"
  // (a space stays a space; onlySpaces text becomes "␣" runs so it is not invisible).
  static QString visibleText(const std::string& text);
  // log10 of a density; dead features (density 0) sort below every live one.
  static double log10Density(double density);

 private:
  std::shared_ptr<const sae::FeatureBrowserData> data_;
  QStringList searchText_;  // per row, lower-case
};
