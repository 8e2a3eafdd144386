// sae-workbench: the desktop workbench, or with --headless the same training and plots without a
// window. See WorkbenchArguments::usage() for the command line.
#include <QApplication>
#include <QDir>
#include <QThread>
#include <QTimer>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <numeric>

#include "ConfigForm.h"
#include "FeatureBrowser.h"
#include "FeatureTableModel.h"
#include "HeadlessRunner.h"
#include "LatencyProbe.h"
#include "MainWindow.h"
#include "PresetStore.h"
#include "ScreenshotTaker.h"
#include "TrainingSession.h"
#include "WorkbenchArguments.h"
#include "analysis/FeatureBrowserData.h"
#include "config/ConfigError.h"
#include "config/PresetLibrary.h"
#include "train/TorchSettings.h"

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

sae::FeatureBrowserOptions featureOptions(const WorkbenchArguments& args) {
  sae::FeatureBrowserOptions options;
  if (args.featureTokens > 0) options.tokens = args.featureTokens;
  return options;
}

// A context on one line: its text with whitespace visible and the firing token in [brackets].
std::string contextLine(const sae::FeatureBrowserData& data, const sae::FeatureContext& c) {
  QString line;
  for (size_t i = 0; i < c.tokens.size(); ++i) {
    const QString token = FeatureTableModel::visibleText(data.tokenText(c.tokens[i]));
    line += static_cast<int>(i) == c.firingIndex ? "[" + token + "]" : token;
  }
  return line.toStdString();
}

// `--features RUN_DIR --headless`: computes RUN_DIR/features.json and prints a short summary.
int runFeaturesHeadless(const WorkbenchArguments& args) {
  const std::string runDir = QDir::cleanPath(args.featuresRunDir).toStdString();
  try {
    int64_t lastPercent = -10;
    const auto data = sae::FeatureBrowserData::compute(
        runDir, featureOptions(args),
        [&lastPercent](int64_t done, int64_t total, const std::string& message) {
          if (total == 0 && !message.empty()) std::printf("%s\n", message.c_str());
          const int64_t percent = total > 0 ? done * 100 / total : -1;
          if (total > 0 && percent >= lastPercent + 10) {
            lastPercent = percent;
            std::printf("scanned %lld / %lld tokens\n", static_cast<long long>(done),
                        static_cast<long long>(total));
          }
          std::fflush(stdout);
          return true;
        });
    const std::string path = sae::FeatureBrowserData::cachePath(runDir);
    data.save(path);
    const int64_t features = static_cast<int64_t>(data.features.size());
    const int64_t dead = std::count_if(data.features.begin(), data.features.end(),
                                       [](const auto& r) { return r.firingCount == 0; });
    std::printf("Wrote %s\n", path.c_str());
    std::printf("SAE %s: %lld features on %s, %lld tokens scanned, %lld never fire\n",
                data.weightsFile.c_str(), static_cast<long long>(features), data.hookPoint.c_str(),
                static_cast<long long>(data.tokensScanned), static_cast<long long>(dead));
    if (!data.scanNote.empty()) std::printf("Note: %s\n", data.scanNote.c_str());
    if (!data.logitNote.empty()) std::printf("Note: %s\n", data.logitNote.c_str());
    // The five features with the largest activations and their strongest context.
    std::vector<int64_t> order(static_cast<size_t>(features));
    std::iota(order.begin(), order.end(), 0);
    std::sort(order.begin(), order.end(), [&data](int64_t a, int64_t b) {
      return data.features[static_cast<size_t>(a)].maxActivation >
             data.features[static_cast<size_t>(b)].maxActivation;
    });
    for (size_t i = 0; i < std::min<size_t>(5, order.size()); ++i) {
      const auto& r = data.features[static_cast<size_t>(order[i])];
      if (r.contexts.empty()) break;
      std::printf("feature %lld: density %.3g, max %.4g: %s\n", static_cast<long long>(r.index),
                  r.density, r.maxActivation, contextLine(data, r.contexts.front()).c_str());
    }
    return 0;
  } catch (const std::exception& error) {
    std::fprintf(stderr, "sae-workbench: %s\n", error.what());
    return 1;
  }
}

// `--features RUN_DIR`: the feature browser as the only window.
int runFeatureBrowser(QApplication& app, const WorkbenchArguments& args) {
  FeatureBrowser browser(args.featuresRunDir);
  browser.show();
  if (!args.screenshotDir.isEmpty()) {
    QObject::connect(&browser, &FeatureBrowser::finished, &browser, [&browser, &args](bool) {
      // Let the histogram's queued replot land first.
      QTimer::singleShot(500, &browser, [&browser, &args] {
        QDir().mkpath(args.screenshotDir);
        const QString path = QDir(args.screenshotDir).filePath("feature-browser.png");
        const bool ok = browser.grab().save(path);
        std::printf(ok ? "Screenshot: %s\n" : "could not write %s\n", qPrintable(path));
        std::fflush(stdout);
        QApplication::exit(ok ? 0 : 1);
      });
    });
  }
  browser.start(featureOptions(args));
  return app.exec();
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
  // Lets Wayland shells match the window to the installed .desktop file and its icon.
  QGuiApplication::setDesktopFileName("io.github.sae_workbench.SaeWorkbench");
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
    if (args.featuresRunDir.isEmpty()) config = args.loadConfig();
  } catch (const std::exception& error) {
    std::fprintf(stderr, "sae-workbench: %s\n", error.what());
    return kExitBadInput;
  }
  if (!args.featuresRunDir.isEmpty()) {
    // No training runs in this process: the scan may use every core.
    sae::TorchSettings::setThreads(std::max(1, QThread::idealThreadCount()));
    return args.headless ? runFeaturesHeadless(args) : runFeatureBrowser(app, args);
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
