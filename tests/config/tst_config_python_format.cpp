// PythonFormat against CPython: repr(float) and format(x, ".Ne") for edge cases and thousands of
// random doubles (fixture from tests/reference/config_reference.py), plus a few literals.
#include <QtTest>

#include <cmath>
#include <cstdlib>

#include <nlohmann/json.hpp>

#include "config/PythonFormat.h"
#include "support/JsonFixtures.h"
#include "support/QtTestStrings.h"

using sae::PythonFormat;
using saetest::loadFixture;

namespace {

// The fixture stores doubles as float.hex() so that no decimal parsing sits in between.
double decode(const std::string& text) {
  if (text == "nan") return std::nan("");
  if (text == "inf") return INFINITY;
  if (text == "-inf") return -INFINITY;
  return std::strtod(text.c_str(), nullptr);
}

}  // namespace

class TestConfigPythonFormat : public QObject {
  Q_OBJECT

 private Q_SLOTS:
  void reprMatchesPython() {
    const auto fixture = loadFixture("config/python_format.json");
    QVERIFY(fixture["repr"].size() > 1000);
    int failures = 0;
    for (const auto& entry : fixture["repr"]) {
      const double x = decode(entry["x"].get<std::string>());
      const std::string expected = entry["repr"].get<std::string>();
      const std::string actual = PythonFormat::repr(x);
      if (actual != expected && ++failures <= 10) {
        qWarning("repr(%s): expected %s, got %s", entry["x"].get<std::string>().c_str(),
                 expected.c_str(), actual.c_str());
      }
    }
    QCOMPARE(failures, 0);
  }

  void scientificMatchesPython() {
    const auto fixture = loadFixture("config/python_format.json");
    QVERIFY(fixture["scientific"].size() > 1000);
    int failures = 0;
    for (const auto& entry : fixture["scientific"]) {
      const double x = decode(entry["x"].get<std::string>());
      const int precision = entry["precision"].get<int>();
      const std::string expected = entry["text"].get<std::string>();
      const std::string actual = PythonFormat::scientific(x, precision);
      if (actual != expected && ++failures <= 10) {
        qWarning("format(%s, '.%de'): expected %s, got %s", entry["x"].get<std::string>().c_str(),
                 precision, expected.c_str(), actual.c_str());
      }
    }
    QCOMPARE(failures, 0);
  }

  void knownValues() {
    // The examples of the header and the seed notebook.
    QCOMPARE(PythonFormat::repr(5e-05), std::string("5e-05"));
    QCOMPARE(PythonFormat::repr(0.005), std::string("0.005"));
    QCOMPARE(PythonFormat::repr(1e16), std::string("1e+16"));
    QCOMPARE(PythonFormat::repr(1e15), std::string("1000000000000000.0"));
    QCOMPARE(PythonFormat::repr(0.0001), std::string("0.0001"));
    QCOMPARE(PythonFormat::repr(1048576.0), std::string("1048576.0"));
    QCOMPARE(PythonFormat::repr(4194.304), std::string("4194.304"));
    QCOMPARE(PythonFormat::repr(1.048576), std::string("1.048576"));
    QCOMPARE(PythonFormat::repr(0.1 + 0.2), std::string("0.30000000000000004"));
    QCOMPARE(PythonFormat::repr(-0.0), std::string("-0.0"));
    QCOMPARE(PythonFormat::repr(0.0), std::string("0.0"));
    QCOMPARE(PythonFormat::repr(INFINITY), std::string("inf"));
    QCOMPARE(PythonFormat::repr(-INFINITY), std::string("-inf"));
    QCOMPARE(PythonFormat::repr(std::nan("")), std::string("nan"));
    QCOMPARE(PythonFormat::repr(5e-324), std::string("5e-324"));
    QCOMPARE(PythonFormat::scientific(81920000, 3), std::string("8.192e+07"));
    QCOMPARE(PythonFormat::scientific(4096000, 2), std::string("4.10e+06"));
    QCOMPARE(PythonFormat::scientific(0, 3), std::string("0.000e+00"));
    QCOMPARE(PythonFormat::scientific(1e100, 1), std::string("1.0e+100"));
  }

  void integers() {
    QCOMPARE(PythonFormat::integer(0), std::string("0"));
    QCOMPARE(PythonFormat::integer(32768), std::string("32768"));
    QCOMPARE(PythonFormat::integer(-7), std::string("-7"));
    QCOMPARE(PythonFormat::integer(INT64_MIN), std::string("-9223372036854775808"));
  }
};

QTEST_APPLESS_MAIN(TestConfigPythonFormat)
#include "tst_config_python_format.moc"
