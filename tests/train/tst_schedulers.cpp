// LrScheduler and L1Scheduler against values produced by torch 1.13's real scheduler objects
// and SAELens's L1Scheduler logic (tests/reference/schedules_reference.py).
#include <cmath>
#include <string>
#include <thread>

#include <torch/torch.h>
#include <QtTest>
#include <nlohmann/json.hpp>

#include "support/JsonFixtures.h"
#include "train/L1Scheduler.h"
#include "train/LrScheduler.h"

using nlohmann::json;
using sae::L1Scheduler;
using sae::LrScheduler;
using saetest::loadFixture;

namespace {

// Relative tolerance 1e-12 (an exact 0 must be reproduced exactly).
bool closeRel(double actual, double expected) {
  return std::fabs(actual - expected) <= 1e-12 * std::fabs(expected);
}

std::string describe(const json& c) {
  return c["name"].get<std::string>() + " lr=" + std::to_string(c["lr"].get<double>()) +
         " T=" + std::to_string(c["training_steps"].get<int64_t>()) +
         " W=" + std::to_string(c["warm_up_steps"].get<int64_t>()) +
         " D=" + std::to_string(c["decay_steps"].get<int64_t>()) +
         " lr_end=" + std::to_string(c["lr_end"].get<double>()) +
         " cycles=" + std::to_string(c["num_cycles"].get<int64_t>());
}

LrScheduler makeScheduler(const json& c) {
  return LrScheduler(c["name"].get<std::string>(), c["lr"].get<double>(),
                     c["training_steps"].get<int64_t>(), c["warm_up_steps"].get<int64_t>(),
                     c["decay_steps"].get<int64_t>(), c["lr_end"].get<double>(),
                     c["num_cycles"].get<int64_t>());
}

}  // namespace

class TestSchedulers : public QObject {
  Q_OBJECT

 private Q_SLOTS:
  void initTestCase() {
    torch::set_num_threads(static_cast<int>(std::thread::hardware_concurrency()));
  }

  // Every fixture case, every step 0..T (T = value after the last scheduler.step()).
  void lrMatchesTorchStepByStep() {
    const json fixture = loadFixture("schedules/lr_schedules.json");
    int checkedCases = 0, checkedValues = 0;
    for (const auto& c : fixture["cases"]) {
      if (c.contains("error") || !c.contains("lrs")) continue;
      const LrScheduler scheduler = makeScheduler(c);
      const auto& lrs = c["lrs"];
      for (size_t t = 0; t < lrs.size(); ++t) {
        const double expected = lrs[t].get<double>();
        const double actual = scheduler.lrAt(static_cast<int64_t>(t));
        if (!closeRel(actual, expected)) {
          QFAIL(qPrintable(QString("%1 step %2: got %3, torch %4")
                               .arg(QString::fromStdString(describe(c)))
                               .arg(t)
                               .arg(actual, 0, 'g', 17)
                               .arg(expected, 0, 'g', 17)));
        }
        ++checkedValues;
      }
      ++checkedCases;
    }
    QVERIFY(checkedCases > 200);
    QVERIFY(checkedValues > 4000);
  }

  // Long runs (T = 20000) sampled; lrAt queried out of order to show it is a pure function.
  void lrLongRunsSampled() {
    const json fixture = loadFixture("schedules/lr_schedules.json");
    int checked = 0;
    for (const auto& c : fixture["cases"]) {
      if (!c.contains("samples")) continue;
      const LrScheduler scheduler = makeScheduler(c);
      auto samples = c["samples"];
      for (int pass = 0; pass < 2; ++pass) {
        for (size_t i = 0; i < samples.size(); ++i) {
          const auto& s = samples[pass == 0 ? i : samples.size() - 1 - i];
          const auto step = s[0].get<int64_t>();
          const double expected = s[1].get<double>();
          const double actual = scheduler.lrAt(step);
          if (!closeRel(actual, expected)) {
            QFAIL(qPrintable(QString("%1 step %2: got %3, torch %4")
                                 .arg(QString::fromStdString(describe(c)))
                                 .arg(step)
                                 .arg(actual, 0, 'g', 17)
                                 .arg(expected, 0, 'g', 17)));
          }
          ++checked;
        }
      }
    }
    QVERIFY(checked >= 3 * 13 * 2);
  }

  // Errors raised while building the scheduler carry SAELens's / torch's message.
  void lrConstructionErrors() {
    const json fixture = loadFixture("schedules/lr_schedules.json");
    int checked = 0;
    for (const auto& c : fixture["cases"]) {
      if (!c.contains("error")) continue;
      const std::string expected = c["error"].get<std::string>();
      try {
        (void)makeScheduler(c);
        QFAIL(qPrintable(QString("%1: no error, torch raised '%2'")
                             .arg(QString::fromStdString(describe(c)))
                             .arg(QString::fromStdString(expected))));
      } catch (const std::invalid_argument& e) {
        QCOMPARE(std::string(e.what()), expected);
      }
      ++checked;
    }
    QVERIFY(checked >= 5);
  }

  // SAELens's own test_get_scheduler_linearwarmupdecay, spelled out.
  void lrDocExample() {
    const LrScheduler scheduler("constant", 0.1, 6, 2, 4, 0.0, 1);
    const double expected[] = {0.05, 0.1, 0.1, 0.075, 0.05, 0.025, 0.0};
    for (int t = 0; t < 7; ++t) {
      QVERIFY2(std::fabs(scheduler.lrAt(t) - expected[t]) <= 1e-12,
               qPrintable(QString("step %1: %2").arg(t).arg(scheduler.lrAt(t), 0, 'g', 17)));
    }
  }

  // torch raises ZeroDivisionError when a cosine main phase of length 0 is stepped (only past
  // the last training step); we return NaN there.
  void lrZeroLengthCosineIsNaNPastTheEnd() {
    const LrScheduler scheduler("cosineannealing", 0.1, 3, 3, 0, 0.01, 1);
    QVERIFY(closeRel(scheduler.lrAt(2), 0.1));
    QVERIFY(std::isnan(scheduler.lrAt(3)));
  }

  void l1MatchesReference() {
    const json fixture = loadFixture("schedules/l1_schedules.json");
    int checked = 0;
    for (const auto& c : fixture["cases"]) {
      const L1Scheduler scheduler(c["final"].get<double>(), c["warm_up_steps"].get<int64_t>());
      auto check = [&](int64_t step, double expected) {
        const double actual = scheduler.coefficientAt(step);
        // Same floating-point expression as Python: exact equality.
        if (actual != expected) {
          QFAIL(qPrintable(QString("final %1 W %2 step %3: got %4, reference %5")
                               .arg(c["final"].get<double>())
                               .arg(c["warm_up_steps"].get<int64_t>())
                               .arg(step)
                               .arg(actual, 0, 'g', 17)
                               .arg(expected, 0, 'g', 17)));
        }
        ++checked;
      };
      if (c.contains("coefficients")) {
        const auto& values = c["coefficients"];
        for (size_t t = 0; t < values.size(); ++t) {
          check(static_cast<int64_t>(t), values[t].get<double>());
        }
      } else {
        for (const auto& s : c["samples"])
          check(s[0].get<int64_t>(), s[1].get<double>());
      }
    }
    QVERIFY(checked > 60);
  }

  // The notebook's schedule (final 0.005, 1000 warm-up steps) at named steps.
  void l1Notebook() {
    const L1Scheduler scheduler(0.005, 1000);
    QCOMPARE(scheduler.coefficientAt(0), 0.0);
    QVERIFY(std::fabs(scheduler.coefficientAt(1) - 0.005 / 1000) < 1e-18);
    QVERIFY(std::fabs(scheduler.coefficientAt(500) - 0.0025) < 1e-18);
    QVERIFY(std::fabs(scheduler.coefficientAt(999) - 0.005 * 0.999) < 1e-18);
    QCOMPARE(scheduler.coefficientAt(1000), 0.005);
    QCOMPARE(scheduler.coefficientAt(19999), 0.005);
    const L1Scheduler noWarmUp(0.005, 0);
    QCOMPARE(noWarmUp.coefficientAt(0), 0.005);
    QCOMPARE(noWarmUp.coefficientAt(7), 0.005);
  }
};

QTEST_APPLESS_MAIN(TestSchedulers)
#include "tst_schedulers.moc"
