#pragma once
// A spin box for floating-point config values that span many orders of magnitude (lr 3e-4,
// dead_feature_threshold 1e-8, l1_coefficient 5): shows the shortest text that reads back as
// the same double, accepts scientific notation, and steps by one unit of the leading digit.
#include <QDoubleSpinBox>

class ScientificSpinBox : public QDoubleSpinBox {
  Q_OBJECT

 public:
  explicit ScientificSpinBox(QWidget* parent = nullptr);

  QString textFromValue(double value) const override;
  double valueFromText(const QString& text) const override;
  QValidator::State validate(QString& input, int& pos) const override;
  void stepBy(int steps) override;
  // The shortest decimal text that parses back to `value` ("0.0003", "1e-08").
  static QString shortestText(double value);
};
