#include "ScreenshotTaker.h"

#include <QApplication>
#include <QDir>
#include <QPixmap>
#include <QTimer>

#include <cstdio>

#include "MainWindow.h"

ScreenshotTaker::ScreenshotTaker(MainWindow* window, const QString& dir, int afterMs)
    : QObject(window), window_(window), dir_(dir), afterMs_(afterMs) {
  QDir().mkpath(dir_);
  connect(window_->session(), &TrainingSession::stateChanged, this,
          [this](TrainingSession::State state) {
            if (state != TrainingSession::State::Running) return;
            QTimer::singleShot(afterMs_, this, [this] { grab("workbench-training.png"); });
          });
  connect(window_->session(), &TrainingSession::ended, this, [this] {
    // Give the last replot (coalesced, ~50 ms) time to land.
    QTimer::singleShot(1500, this, [this] {
      grab("workbench-finished.png");
      // exit(), not quit(): quit() first closes the window, which asks about unsaved edits.
      QApplication::exit(0);
    });
  });
}

bool ScreenshotTaker::grab(const QString& name) {
  const QString path = QDir(dir_).filePath(name);
  if (!window_->grab().save(path)) {
    std::fprintf(stderr, "sae-workbench: could not write screenshot %s\n", qPrintable(path));
    return false;
  }
  std::printf("Screenshot: %s\n", qPrintable(path));
  std::fflush(stdout);
  return true;
}
