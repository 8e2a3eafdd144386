#pragma once
// sae-workbench's command line:
//   sae-workbench [--preset NAME | --config FILE] [--set key=value]... [--start] [--out DIR]
//                 [--headless]
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
  // Hidden: --measure-latency, --screenshot-dir DIR, --screenshot-after-ms N.
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
