#pragma once
// Prints a run to the terminal the way SAELens's tqdm bar does: the preamble, then
// "{step}| MSE Loss {:.3f} | L1 {:.3f}:  22%|##        | 18247680/81920000 [25:45<1:29:52,
// 11808.04it/s]", rewritten in place on a terminal and one line per 100 steps otherwise.
#include <cstdio>

#include "train/TrainingObserver.h"

class ConsoleReporter : public sae::TrainingObserver {
 public:
  explicit ConsoleReporter(std::FILE* out);
  void onMessage(const std::string& line) override;
  void onProgress(const sae::ProgressEvent& event) override;
  void onCheckpoint(const std::string& folder) override;
  void onFinished(const std::string& folder) override;

 private:
  void endLine();
  std::FILE* out_;
  bool terminal_;
  bool midLine_ = false;
  double lastDraw_ = -1;
  double mse_ = 0, l1_ = 0;  // shown values, refreshed every 100 steps as tqdm's description
};
