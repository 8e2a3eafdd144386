#pragma once
// Writes a QCustomPlot to PNG, SVG or PDF, and text (CSV) files, each to a temporary name in
// the target folder and renamed over the target, so a reader never sees half a file. Works
// offscreen with a widget that was never shown: every export is drawn at a definite size.
#include <QByteArray>
#include <QString>

class QCustomPlot;

class PlotExporter {
 public:
  static constexpr int kWidth = 960;  // pixels (PNG) or points (SVG, PDF)
  static constexpr int kHeight = 540;

  // By the suffix of path: .png, .svg or .pdf (case-insensitive). False with *error set (the
  // path and the reason) on an unknown suffix or a write failure.
  static bool writeImage(QCustomPlot* plot, const QString& path, QString* error, int width = kWidth,
                         int height = kHeight);
  static bool writeText(const QString& path, const QByteArray& data, QString* error);
};
