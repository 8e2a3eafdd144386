#include "ConsoleReporter.h"

#include <unistd.h>

#include <cmath>
#include <string>

namespace {
std::string clock(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const long s = static_cast<long>(seconds + 0.5);
  char text[32];
  if (s >= 3600) {
    std::snprintf(text, sizeof text, "%ld:%02ld:%02ld", s / 3600, (s / 60) % 60, s % 60);
  } else {
    std::snprintf(text, sizeof text, "%02ld:%02ld", s / 60, s % 60);
  }
  return text;
}
}  // namespace

ConsoleReporter::ConsoleReporter(std::FILE* out) : out_(out), terminal_(isatty(fileno(out))) {}

void ConsoleReporter::endLine() {
  if (midLine_) std::fputc('\n', out_);
  midLine_ = false;
}

void ConsoleReporter::onMessage(const std::string& line) {
  endLine();
  std::fprintf(out_, "%s\n", line.c_str());
  std::fflush(out_);
}

void ConsoleReporter::onProgress(const sae::ProgressEvent& event) {
  if (event.step % 100 == 0 || event.step == 1) {
    mse_ = event.mse_loss;
    l1_ = event.l1_loss;
  }
  const bool last = event.tokens_done >= event.tokens_total;
  if (terminal_) {
    // Redraw at most 10 times a second.
    if (!last && event.elapsed_seconds - lastDraw_ < 0.1) return;
  } else if (event.step % 100 != 0 && !last) {
    return;
  }
  lastDraw_ = event.elapsed_seconds;
  const double fraction =
      event.tokens_total > 0 ? static_cast<double>(event.tokens_done) / event.tokens_total : 0;
  const int percent = static_cast<int>(fraction * 100);
  std::string bar(10, ' ');
  for (int i = 0; i < static_cast<int>(fraction * 10); ++i)
    bar[i] = '#';
  const double remaining = event.tokens_per_second > 0
                               ? (event.tokens_total - event.tokens_done) / event.tokens_per_second
                               : NAN;
  std::fprintf(out_, "%s%lld| MSE Loss %.3f | L1 %.3f: %3d%%|%s| %lld/%lld [%s<%s, %.2fit/s]",
               terminal_ ? "\r" : "", static_cast<long long>(event.step), mse_, l1_, percent,
               bar.c_str(), static_cast<long long>(event.tokens_done),
               static_cast<long long>(event.tokens_total), clock(event.elapsed_seconds).c_str(),
               clock(remaining).c_str(), event.tokens_per_second);
  if (terminal_) {
    midLine_ = true;
  } else {
    std::fputc('\n', out_);
  }
  std::fflush(out_);
}

void ConsoleReporter::onCheckpoint(const std::string& folder) {
  onMessage("Checkpoint saved to " + folder);
}

void ConsoleReporter::onFinished(const std::string& folder) {
  onMessage("Final SAE saved to " + folder);
}
