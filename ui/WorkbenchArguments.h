#pragma once
// sae-workbench's command line:
//   sae-workbench [--preset NAME | --config FILE] [--set key=value]... [--start] [--out DIR]
//                 [--headless]
//   sae-workbench --features RUN_DIR [--feature-tokens N] [--headless]
// plus hidden options for the screenshot script and the latency measurement.
#include <QString>
#include <QStringList>

#include "config/RunConfig.h"

struct WorkbenchArguments {
  QString preset;
  QString configPath;
  QStringList overrides;
  QString outDir;  // the runs folder; each run gets <outDir>/<run name>-<time>
  bool start = false;
  bool headless = false;
  bool help = false;
  // --features RUN_DIR: open the feature browser of a trained run instead of the workbench
  // (with --headless: write RUN_DIR/features.json and print a summary). --feature-tokens N:
  // tokens to scan (0: FeatureBrowserOptions's default).
  QString featuresRunDir;
  qint64 featureTokens = 0;
  // Hidden: --measure-latency, --screenshot-dir DIR, --screenshot-after-ms N (with --features:
  // DIR/feature-browser.png once the features are shown).
  bool measureLatency = false;
  QString screenshotDir;
  int screenshotAfterMs = 3000;

  // `arguments` without the program name. Throws sae::ConfigError with a message naming the
  // option for unknown options, missing values and conflicting choices.
  static WorkbenchArguments parse(const QStringList& arguments);
  static QString usage();
  // "demo" when the built-in presets have it, else "synthetic-demo".
  static QString defaultPreset();
  // The config the arguments name, overrides applied and validated: a built-in preset, else a
  // user preset of `userPresetsFolder`, or a config file. Throws sae::ConfigError.
  sae::RunConfig loadConfig(const QString& userPresetsFolder = QString()) const;
  bool hasConfig() const { return !preset.isEmpty() || !configPath.isEmpty(); }
};
