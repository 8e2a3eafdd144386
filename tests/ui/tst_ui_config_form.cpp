// The generated config form: every field type survives JSON -> form -> JSON, edits made through
// the widgets reach the JSON, and a bad value shows its message next to the field and disables
// Start in the main window.
#include <QCheckBox>
#include <QComboBox>
#include <QDoubleSpinBox>
#include <QLabel>
#include <QLineEdit>
#include <QPushButton>
#include <QStandardPaths>
#include <QTemporaryDir>
#include <QtTest>

#include "ConfigForm.h"
#include "DerivedValuesPanel.h"
#include "MainWindow.h"
#include "MetricPlot.h"
#include "PlotDashboard.h"
#include "ScientificSpinBox.h"
#include "TrainingSession.h"
#include "config/ConfigSchema.h"
#include "config/PresetLibrary.h"
#include "train/TrainingRun.h"

namespace {

// A value different from the default that the field's editor can hold.
nlohmann::json otherValue(const sae::ConfigField& field) {
  const nlohmann::json def = field.defaultValue();
  if (!field.choices.empty()) {
    return field.choices.back() == def ? field.choices.front() : field.choices.back();
  }
  switch (field.type()) {
    case sae::FieldType::Bool:
      return !(def.is_boolean() && def.get<bool>());
    case sae::FieldType::Int: {
      const int64_t base = def.is_number() ? def.get<int64_t>() : 0;
      int64_t v = base + 3;
      if (field.minimum && v < *field.minimum) v = static_cast<int64_t>(*field.minimum) + 3;
      if (field.maximum && v > *field.maximum) v = static_cast<int64_t>(*field.maximum);
      return v;
    }
    case sae::FieldType::Float: {
      if (field.maximum) return (field.minimum.value_or(0) + *field.maximum) / 2 + 0.0625;
      const double base = def.is_number() ? def.get<double>() : 0.0;
      return base * 3 + 1.25e-5;
    }
    case sae::FieldType::String:
      return "value of " + field.name;
    case sae::FieldType::Json:
      return nlohmann::json{{"key", field.name}, {"n", 2}};
  }
  return nullptr;
}

}  // namespace

class ConfigFormTest : public QObject {
  Q_OBJECT

 private Q_SLOTS:
  void initTestCase() { QStandardPaths::setTestModeEnabled(true); }

  void defaultsRoundTrip() {
    ConfigForm form;
    const nlohmann::json json = form.json();
    for (const auto& field : sae::ConfigSchema::fields()) {
      if (field.name == "d_sae") {
        QVERIFY(json[field.name].is_null());  // derived, never stored
        continue;
      }
      QVERIFY2(json.at(field.name) == field.defaultValue(), field.name.c_str());
    }
  }

  void everyFieldTypeRoundTrips() {
    // Each field set to a non-default value at once: bools, ints, floats, strings, choices,
    // nullable values and JSON objects all come back unchanged.
    nlohmann::json input = nlohmann::json::object();
    for (const auto& field : sae::ConfigSchema::fields()) {
      if (field.name == "d_sae") continue;
      input[field.name] = otherValue(field);
    }
    ConfigForm form;
    form.setJson(input);
    const nlohmann::json output = form.json();
    int checked = 0;
    for (const auto& field : sae::ConfigSchema::fields()) {
      if (field.name == "d_sae") continue;
      QVERIFY2(output.at(field.name) == input.at(field.name),
               (field.name + ": " + input.at(field.name).dump() + " came back as " +
                output.at(field.name).dump())
                   .c_str());
      ++checked;
    }
    QCOMPARE(checked, static_cast<int>(sae::ConfigSchema::fields().size()) - 1);
  }

  void nullableFieldsRoundTripNull() {
    nlohmann::json input = {{"lr_end", 1e-5}, {"hook_point_head_index", 3}, {"run_name", "x"}};
    ConfigForm form;
    form.setJson(input);
    QCOMPARE(form.json()["lr_end"].get<double>(), 1e-5);
    QCOMPARE(form.json()["hook_point_head_index"].get<int>(), 3);
    QVERIFY(form.nullToggleFor("lr_end")->isChecked());
    form.nullToggleFor("lr_end")->setChecked(false);  // as the user unticks it
    QVERIFY(form.json()["lr_end"].is_null());
    QVERIFY(!form.editorFor("lr_end")->isEnabled());
    form.setJson({{"run_name", nullptr}, {"mse_loss_normalization", nullptr}});
    QVERIFY(form.json()["run_name"].is_null());
    QVERIFY(form.json()["mse_loss_normalization"].is_null());
    QCOMPARE(qobject_cast<QComboBox*>(form.editorFor("mse_loss_normalization"))->currentText(),
             QString("(none)"));
  }

  void presetRoundTripsThroughTheForm() {
    // Built-in preset -> form -> RunConfig gives the same config sae-train would load.
    for (const auto& name : sae::PresetLibrary::names()) {
      const sae::RunConfig preset = sae::PresetLibrary::load(name);
      ConfigForm form;
      form.setJson(preset.toJson());
      QVERIFY2(form.isValid(), qPrintable(form.problems().join("; ")));
      QCOMPARE(form.config()->toJson(), preset.toJson());
    }
  }

  void widgetEditsReachTheJson() {
    ConfigForm form;
    QSignalSpy edited(&form, &ConfigForm::edited);
    auto* lr = qobject_cast<ScientificSpinBox*>(form.editorFor("lr"));
    QVERIFY(lr);
    lr->findChild<QLineEdit*>()->selectAll();
    QTest::keyClicks(lr->findChild<QLineEdit*>(), "2.5e-4");
    QCOMPARE(form.json()["lr"].get<double>(), 2.5e-4);
    auto* expansion = qobject_cast<QDoubleSpinBox*>(form.editorFor("expansion_factor"));
    expansion->setValue(16);
    QCOMPARE(form.json()["expansion_factor"].get<int64_t>(), int64_t{16});
    auto* ghost = qobject_cast<QCheckBox*>(form.editorFor("use_ghost_grads"));
    ghost->setChecked(true);
    QCOMPARE(form.json()["use_ghost_grads"].get<bool>(), true);
    auto* scheduler = qobject_cast<QComboBox*>(form.editorFor("lr_scheduler_name"));
    scheduler->setCurrentText("cosineannealing");
    QCOMPARE(form.json()["lr_scheduler_name"].get<std::string>(), std::string("cosineannealing"));
    auto* kwargs = qobject_cast<QLineEdit*>(form.editorFor("model_kwargs"));
    kwargs->selectAll();
    QTest::keyClicks(kwargs, R"({"a": 1})");
    QCOMPARE(form.json()["model_kwargs"], (nlohmann::json{{"a", 1}}));
    QVERIFY(edited.count() >= 5);
    QVERIFY2(form.isValid(), qPrintable(form.problems().join("; ")));
    QCOMPARE(form.config()->derivedDSae(), int64_t{512 * 16});
  }

  void badJsonIsReportedNextToTheField() {
    ConfigForm form;
    auto* kwargs = qobject_cast<QLineEdit*>(form.editorFor("model_kwargs"));
    kwargs->selectAll();
    QTest::keyClicks(kwargs, "{not json");
    QVERIFY(!form.isValid());
    QVERIFY2(form.messageFor("model_kwargs").contains("not valid JSON"),
             qPrintable(form.messageFor("model_kwargs")));
  }

  void badValueShowsMessageAndDisablesStart() {
    QTemporaryDir dir;
    MainWindow::Options options;
    options.runsFolder = dir.filePath("runs");
    options.userPresetsFolder = dir.filePath("presets");
    options.restoreLastPreset = false;
    MainWindow window(options);
    QVERIFY(window.windowTitle().startsWith("SAE Workbench"));
    auto* start = window.findChild<QPushButton*>("startButton");
    QVERIFY(start);
    QVERIFY(window.form()->isValid());
    QVERIFY(start->isEnabled());

    // lr must be > 0: typing 0 is a value the spin box holds but the core rejects.
    auto* lr = qobject_cast<ScientificSpinBox*>(window.form()->editorFor("lr"));
    lr->findChild<QLineEdit*>()->selectAll();
    QTest::keyClicks(lr->findChild<QLineEdit*>(), "0");
    QVERIFY(!window.form()->isValid());
    QVERIFY(!start->isEnabled());
    const QString message = window.form()->messageFor("lr");
    QVERIFY2(message.contains("lr") && message.contains("0"), qPrintable(message));
    // The message label sits in the form next to the field and is shown.
    auto* label = window.findChild<QLabel*>("message_lr");
    QVERIFY(label);
    QCOMPARE(label->text(), message);
    QVERIFY(!label->isHidden());
    QVERIFY(window.hasUnsavedChanges());
    QVERIFY(window.isWindowModified());

    // Cross-field rule: the message lands next to the field the core names.
    lr->findChild<QLineEdit*>()->selectAll();
    QTest::keyClicks(lr->findChild<QLineEdit*>(), "0.001");
    QVERIFY2(window.form()->isValid(), qPrintable(window.form()->problems().join("; ")));
    QVERIFY(start->isEnabled());
    QVERIFY(label->isHidden());
  }

  // Continue run: the window shows the stopped run's curves up to its checkpoint at once, then
  // trains it to the end in the same folder.
  void continueRunShowsEarlierCurvesAndFinishes() {
    QTemporaryDir dir;
    sae::RunConfig config = sae::PresetLibrary::load("synthetic-demo");
    for (const char* kv :
         {"d_in=16", "expansion_factor=2", "train_batch_size=64", "context_size=16",
          "store_batch_size=2", "n_batches_in_buffer=4", "synthetic_n_features=32",
          "training_tokens=12800", "wandb_log_frequency=5", "l1_warm_up_steps=10",
          "lr_decay_steps=0", "n_checkpoints=0", "num_threads=1"})
      config.applyOverride(kv);
    const std::string runDir = dir.filePath("run").toStdString();
    {
      struct StopAt : sae::TrainingObserver {
        sae::TrainingRun* run = nullptr;
        void onProgress(const sae::ProgressEvent& e) override {
          if (e.step >= 42) run->requestStop();
        }
      } stop;
      sae::TrainingRun run(config, runDir);
      stop.run = &run;
      run.addObserver(&stop);
      QVERIFY(!run.run());
    }
    MainWindow::Options options;
    options.runsFolder = dir.filePath("runs");
    options.userPresetsFolder = dir.filePath("presets");
    options.restoreLastPreset = false;
    MainWindow window(options);
    auto* cont = window.findChild<QPushButton*>("continueRunButton");
    QVERIFY(cont && cont->isEnabled());
    QVERIFY(window.continueRun(QString::fromStdString(runDir)));
    QVERIFY(!cont->isEnabled());
    window.dashboard()->flush();
    // Steps 4, 9, ..., 39 were logged before the stop checkpoint at step 42.
    QCOMPARE(window.dashboard()->metricPlot("mse_loss")->pointCount(0), 8);
    QCOMPARE(window.form()->config()->training_tokens, int64_t(12800));
    QTRY_COMPARE_WITH_TIMEOUT(window.session()->state(), TrainingSession::State::Finished, 60000);
    window.dashboard()->flush();
    QCOMPARE(window.dashboard()->metricPlot("mse_loss")->pointCount(0), 200 / 5);
    QVERIFY(QFile::exists(QString::fromStdString(runDir) + "/final/sae_weights.safetensors"));
    QVERIFY(cont->isEnabled());
  }

  void derivedValuesFollowTheConfig() {
    sae::RunConfig config = sae::PresetLibrary::load("how-we-train-saes-gelu-1l");
    const auto rows = DerivedValuesPanel::rows(config);
    QCOMPARE(rows[0].first, QString("d_sae"));
    QCOMPARE(rows[0].second, QString("32,768"));
    QCOMPARE(rows[1].second, QString("20,000"));     // the notebook's "Total training steps"
    QCOMPARE(rows[2].second, QString("1,048,576"));  // n_tokens_per_buffer 1.048576 M
    QCOMPARE(rows[3].second, QString("1,024"));
    QCOMPARE(rows[4].second, QString("32768-L1-0.005-LR-5e-05-Tokens-8.192e+07"));
    const auto m = DerivedValuesPanel::memory(config);
    QCOMPARE(m.parameters, int64_t{2 * 512 * 32768 + 32768 + 512});
    QCOMPARE(m.weightBytes, m.parameters * 4);
    QCOMPARE(m.adamBytes, 2 * m.weightBytes);
    QCOMPARE(m.bufferBytes, int64_t{1048576} * 512 * 4);
  }
};

QTEST_MAIN(ConfigFormTest)
#include "tst_ui_config_form.moc"
