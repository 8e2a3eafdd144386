// sae-workbench: the desktop workbench, or with --headless the same training and plots without a
// window. See WorkbenchArguments::usage() for the command line.
#include <QApplication>
#include <QTimer>

#include <cstdio>
#include <memory>

#include "ConfigForm.h"
#include "HeadlessRunner.h"
#include "LatencyProbe.h"
#include "MainWindow.h"
#include "PresetStore.h"
#include "ScreenshotTaker.h"
#include "TrainingSession.h"
#include "WorkbenchArguments.h"
#include "config/ConfigError.h"
#include "config/PresetLibrary.h"

namespace {

constexpr int kExitBadInput = 2;

bool wantsHeadless(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (QByteArray(argv[i]) == "--headless") return true;
  }
  return false;
}

bool isBuiltIn(const QString& name) {
  for (const auto& n : sae::PresetLibrary::names()) {
    if (QString::fromStdString(n) == name) return true;
  }
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  // Headless needs no display: without a chosen platform, render offscreen instead of failing
  // to connect to an X server.
  if (wantsHeadless(argc, argv) && qEnvironmentVariableIsEmpty("QT_QPA_PLATFORM")) {
    qputenv("QT_QPA_PLATFORM", "offscreen");
  }
  QApplication app(argc, argv);
  QApplication::setApplicationName("sae-workbench");
  QApplication::setApplicationDisplayName("SAE Workbench");

  WorkbenchArguments args;
  sae::RunConfig config;
  try {
    args = WorkbenchArguments::parse(app.arguments().mid(1));
    if (args.help) {
      std::printf("%s", qPrintable(WorkbenchArguments::usage()));
      return 0;
    }
    // Loading here reports a bad preset, file or --set before any window opens.
    config = args.loadConfig();
  } catch (const std::exception& error) {
    std::fprintf(stderr, "sae-workbench: %s\n", error.what());
    return kExitBadInput;
  }
  const QString runsFolder =
      args.outDir.isEmpty() ? TrainingSession::defaultRunsFolder() : args.outDir;

  if (args.headless) {
    HeadlessRunner runner(config, runsFolder);
    return runner.exec();
  }

  MainWindow::Options options;
  options.runsFolder = runsFolder;
  options.restoreLastPreset = !args.hasConfig();
  MainWindow window(options);
  if (args.hasConfig()) {
    if (!args.preset.isEmpty() && args.overrides.isEmpty()) {
      const bool builtIn = isBuiltIn(args.preset) || !window.presetStore().contains(args.preset);
      window.openPreset(args.preset, builtIn);
    } else {
      window.showConfig(config, args.configPath.isEmpty() ? "preset " + args.preset + " + --set"
                                                          : args.configPath);
    }
  }
  window.show();

  std::unique_ptr<LatencyProbe> probe;
  double lastTokensPerSecond = 0;
  if (args.measureLatency) {
    probe = std::make_unique<LatencyProbe>(10);
    QObject::connect(window.session(), &TrainingSession::batchReady, &window,
                     [&lastTokensPerSecond](const TrainingBatch& batch) {
                       if (batch.hasProgress)
                         lastTokensPerSecond = batch.progress.tokens_per_second;
                     });
    QObject::connect(window.session(), &TrainingSession::ended, &window,
                     [&probe, &lastTokensPerSecond] {
                       probe->stop();
                       std::printf("%s\n", qPrintable(probe->report(lastTokensPerSecond)));
                       std::fflush(stdout);
                       QApplication::exit(0);  // quit() would ask about unsaved edits
                     });
  }
  if (!args.screenshotDir.isEmpty()) {
    new ScreenshotTaker(&window, args.screenshotDir, args.screenshotAfterMs);
  }
  if (args.start || args.measureLatency) {
    QTimer::singleShot(0, &window, [&window, &probe] {
      if (!window.startTraining()) {
        std::fprintf(stderr, "sae-workbench: cannot start: %s\n",
                     qPrintable(window.form()->problems().join("; ")));
        return;
      }
      if (probe) probe->start();
    });
  }
  return app.exec();
}
