#include "ScientificSpinBox.h"

#include <QLocale>

#include <cmath>

ScientificSpinBox::ScientificSpinBox(QWidget* parent) : QDoubleSpinBox(parent) {
  // QDoubleSpinBox rounds every value to decimals(); the maximum keeps 1e-8 and 3e-4 exact.
  setDecimals(323);
  setKeyboardTracking(true);
}

QString ScientificSpinBox::shortestText(double value) {
  return QString::number(value, 'g', QLocale::FloatingPointShortest);
}

QString ScientificSpinBox::textFromValue(double value) const {
  return shortestText(value);
}

double ScientificSpinBox::valueFromText(const QString& text) const {
  QString body = text;
  if (!prefix().isEmpty() && body.startsWith(prefix())) body.remove(0, prefix().size());
  return body.trimmed().toDouble();
}

QValidator::State ScientificSpinBox::validate(QString& input, int& /*pos*/) const {
  const QString text = input.trimmed();
  if (text.isEmpty()) return QValidator::Intermediate;
  bool ok = false;
  const double value = text.toDouble(&ok);
  if (ok) {
    return value >= minimum() && value <= maximum() ? QValidator::Acceptable
                                                    : QValidator::Intermediate;
  }
  // Half-typed numbers ("1e", "-", "3.") may still become valid.
  static const QString allowed = QStringLiteral("0123456789.eE+-");
  for (const QChar c : text) {
    if (!allowed.contains(c)) return QValidator::Invalid;
  }
  return QValidator::Intermediate;
}

void ScientificSpinBox::stepBy(int steps) {
  const double v = value();
  // One unit of the leading digit: 3e-4 steps by 1e-4, 0.2 by 0.1, 0 by 0.1.
  const double unit = v == 0 ? 0.1 : std::pow(10.0, std::floor(std::log10(std::fabs(v))));
  double next = v + steps * unit;
  // Stepping down from 1e-4 would reach 0 in one step; go one decade lower instead.
  if (v > 0 && next <= 0 && minimum() < v) next = unit / 10;
  setValue(std::clamp(next, minimum(), maximum()));
  selectAll();
}
