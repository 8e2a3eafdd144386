#pragma once
// Hidden `--screenshot-dir DIR [--screenshot-after-ms N]` mode for packaging/screenshots.sh:
// grabs the main window N ms after training starts and again once it has ended, then quits.
// QWidget::grab() renders the window itself, so no screen-capture tool is needed under Xvfb.
#include <QObject>
#include <QString>

class MainWindow;

class ScreenshotTaker : public QObject {
  Q_OBJECT

 public:
  ScreenshotTaker(MainWindow* window, const QString& dir, int afterMs);
  // Saves window->grab() as dir/name; false (with a message on stderr) when it cannot.
  bool grab(const QString& name);

 private:
  MainWindow* window_;
  QString dir_;
  int afterMs_;
};
