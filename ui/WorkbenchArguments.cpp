#include "WorkbenchArguments.h"

#include "PresetStore.h"
#include "analysis/FeatureBrowserData.h"
#include "config/ConfigError.h"
#include "config/PresetLibrary.h"

#include <algorithm>

WorkbenchArguments WorkbenchArguments::parse(const QStringList& arguments) {
  WorkbenchArguments args;
  auto value = [&](int& i, const QString& option) -> QString {
    if (i + 1 >= arguments.size() || arguments[i + 1].startsWith("--")) {
      throw sae::ConfigError("option " + option.toStdString() + " needs a value");
    }
    return arguments[++i];
  };
  for (int i = 0; i < arguments.size(); ++i) {
    const QString a = arguments[i];
    if (a == "--preset") {
      args.preset = value(i, a);
    } else if (a == "--config") {
      args.configPath = value(i, a);
    } else if (a == "--set") {
      const QString kv = value(i, a);
      if (!kv.contains('=')) {
        throw sae::ConfigError("--set needs key=value, got '" + kv.toStdString() + "'");
      }
      args.overrides << kv;
    } else if (a == "--out") {
      args.outDir = value(i, a);
    } else if (a == "--start") {
      args.start = true;
    } else if (a == "--headless") {
      args.headless = true;
    } else if (a == "--features") {
      args.featuresRunDir = value(i, a);
    } else if (a == "--feature-tokens") {
      bool ok = false;
      const QString text = value(i, a);
      args.featureTokens = text.toLongLong(&ok);
      if (!ok || args.featureTokens < 1) {
        throw sae::ConfigError("--feature-tokens needs a positive number of tokens, got '" +
                               text.toStdString() + "'");
      }
    } else if (a == "--measure-latency") {
      args.measureLatency = true;
    } else if (a == "--screenshot-dir") {
      args.screenshotDir = value(i, a);
    } else if (a == "--screenshot-after-ms") {
      bool ok = false;
      const QString text = value(i, a);
      args.screenshotAfterMs = text.toInt(&ok);
      if (!ok || args.screenshotAfterMs < 0) {
        throw sae::ConfigError("--screenshot-after-ms needs a number of milliseconds, got '" +
                               text.toStdString() + "'");
      }
    } else if (a == "-h" || a == "--help") {
      args.help = true;
    } else {
      throw sae::ConfigError("unknown option '" + a.toStdString() +
                             "'; run sae-workbench --help for the options");
    }
  }
  if (!args.preset.isEmpty() && !args.configPath.isEmpty()) {
    throw sae::ConfigError("give either --config or --preset, not both");
  }
  if (!args.featuresRunDir.isEmpty() &&
      (args.hasConfig() || !args.overrides.isEmpty() || args.start || args.measureLatency)) {
    throw sae::ConfigError(
        "--features opens a trained run; it takes no --preset, --config, --set, --start or "
        "--measure-latency");
  }
  if (args.featureTokens > 0 && args.featuresRunDir.isEmpty()) {
    throw sae::ConfigError("--feature-tokens goes with --features RUN_DIR");
  }
  return args;
}

QString WorkbenchArguments::usage() {
  return "usage: sae-workbench [--preset NAME | --config FILE] [--set key=value]... [--start]\n"
         "                     [--out DIR] [--headless]\n"
         "       sae-workbench --features RUN_DIR [--feature-tokens N] [--headless]\n"
         "\n"
         "Opens the SAE Workbench window with the config of a preset (built-in or your own) or a\n"
         "config file; --set key=value overrides one field (value parsed as JSON, else a string).\n"
         "  --start     start training at once\n"
         "  --out DIR   folder that receives the runs (default: the app's data folder/runs);\n"
         "              each run is DIR/<run name>-<time>\n"
         "  --headless  no window: train, print progress, then write every plot into\n"
         "              <run>/plots (works with QT_QPA_PLATFORM=offscreen)\n"
         "  --features RUN_DIR  browse the features of a trained run: density, top contexts,\n"
         "              activation histogram, logit effects (cached in RUN_DIR/features.json);\n"
         "              with --headless, compute RUN_DIR/features.json and print a summary\n"
         "  --feature-tokens N  tokens to scan for --features (default " +
         QString::number(sae::FeatureBrowserOptions{}.tokens) +
         ")\n"
         "Default preset: " +
         defaultPreset() +
         ".\n"
         "Exit codes (headless): 0 done, 1 training or export failed, 2 bad arguments or config,\n"
         "130 interrupted (a checkpoint is saved first).\n";
}

QString WorkbenchArguments::defaultPreset() {
  const auto names = sae::PresetLibrary::names();
  if (std::find(names.begin(), names.end(), "demo") != names.end()) return "demo";
  return "synthetic-demo";
}

sae::RunConfig WorkbenchArguments::loadConfig(const QString& userPresetsFolder) const {
  sae::RunConfig config;
  std::string source;
  if (!configPath.isEmpty()) {
    config = sae::RunConfig::loadFile(configPath.toStdString());
    source = configPath.toStdString();
  } else {
    const QString name = preset.isEmpty() ? defaultPreset() : preset;
    source = "preset " + name.toStdString();
    const auto builtIns = sae::PresetLibrary::names();
    const bool builtIn =
        std::find(builtIns.begin(), builtIns.end(), name.toStdString()) != builtIns.end() ||
        name.endsWith(".json");
    PresetStore store(userPresetsFolder);
    if (!builtIn && store.contains(name)) {
      config = sae::RunConfig::fromJson(store.load(name), source);
    } else {
      config = sae::PresetLibrary::load(name.toStdString());  // lists the names when unknown
    }
  }
  for (const QString& kv : overrides)
    config.applyOverride(kv.toStdString());
  const auto issues = config.validate();
  if (!issues.empty()) throw sae::ConfigError(source, issues);
  return config;
}
