#include "PlotExporter.h"

#include <QFileInfo>
#include <QPixmap>
#include <QSaveFile>
#include <QSvgGenerator>
#include <QTemporaryFile>

#include <cstdio>

#include <qcustomplot.h>

namespace {

bool fail(QString* error, const QString& message) {
  if (error) *error = message;
  return false;
}

bool commit(QSaveFile& file, const QString& path, QString* error) {
  if (!file.commit()) {
    return fail(error, QStringLiteral("cannot write '%1': %2").arg(path, file.errorString()));
  }
  return true;
}

}  // namespace

bool PlotExporter::writeImage(QCustomPlot* plot, const QString& path, QString* error, int width,
                              int height) {
  const QString suffix = QFileInfo(path).suffix().toLower();
  if (suffix == QLatin1String("png")) {
    QSaveFile file(path);
    if (!file.open(QIODevice::WriteOnly)) {
      return fail(error, QStringLiteral("cannot write '%1': %2").arg(path, file.errorString()));
    }
    const QPixmap pixmap = plot->toPixmap(width, height, 1.0);
    if (pixmap.isNull() || !pixmap.save(&file, "PNG")) {
      file.cancelWriting();
      return fail(error, QStringLiteral("cannot render the PNG '%1'").arg(path));
    }
    return commit(file, path, error);
  }
  if (suffix == QLatin1String("svg")) {
    QSaveFile file(path);
    if (!file.open(QIODevice::WriteOnly)) {
      return fail(error, QStringLiteral("cannot write '%1': %2").arg(path, file.errorString()));
    }
    // QCustomPlot has no SVG export: draw it through its painter onto an SVG generator.
    QSvgGenerator generator;
    generator.setOutputDevice(&file);
    generator.setSize(QSize(width, height));
    generator.setViewBox(QRect(0, 0, width, height));
    generator.setTitle(QFileInfo(path).completeBaseName());
    generator.setDescription(QStringLiteral("SAE Workbench plot"));
    QCPPainter painter;
    if (!painter.begin(&generator)) {
      file.cancelWriting();
      return fail(error, QStringLiteral("cannot start drawing the SVG '%1'").arg(path));
    }
    plot->toPainter(&painter, width, height);
    painter.end();
    return commit(file, path, error);
  }
  if (suffix == QLatin1String("pdf")) {
    // savePdf wants a file name: write a temporary file beside the target, then rename.
    QTemporaryFile temp(path + QStringLiteral(".XXXXXX.part"));
    if (!temp.open()) {
      return fail(error, QStringLiteral("cannot write '%1': %2").arg(path, temp.errorString()));
    }
    temp.close();
    if (!plot->savePdf(temp.fileName(), width, height, QCP::epNoCosmetic,
                       QStringLiteral("SAE Workbench"), QFileInfo(path).completeBaseName())) {
      return fail(error, QStringLiteral("cannot write the PDF '%1'").arg(path));
    }
    // POSIX rename replaces the target atomically.
    if (std::rename(QFile::encodeName(temp.fileName()).constData(),
                    QFile::encodeName(path).constData()) != 0) {
      return fail(error, QStringLiteral("cannot rename the PDF into place at '%1'").arg(path));
    }
    temp.setAutoRemove(false);
    // Temporary files are created private (0600); an export is an ordinary file.
    QFile::setPermissions(path, QFileDevice::ReadOwner | QFileDevice::WriteOwner |
                                    QFileDevice::ReadGroup | QFileDevice::ReadOther);
    return true;
  }
  return fail(error, QStringLiteral("cannot export '%1': unknown format '%2'; use .png, .svg, "
                                    ".pdf or .csv")
                         .arg(path, suffix));
}

bool PlotExporter::writeText(const QString& path, const QByteArray& data, QString* error) {
  QSaveFile file(path);
  if (!file.open(QIODevice::WriteOnly)) {
    return fail(error, QStringLiteral("cannot write '%1': %2").arg(path, file.errorString()));
  }
  if (file.write(data) != data.size()) {
    file.cancelWriting();
    return fail(error, QStringLiteral("cannot write '%1': %2").arg(path, file.errorString()));
  }
  return commit(file, path, error);
}
