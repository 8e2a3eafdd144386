// Running one of the built programs (sae-train, sae-workbench) from a test and collecting what
// it printed.
#pragma once

#include <QProcess>
#include <QProcessEnvironment>
#include <QString>
#include <QStringList>

namespace saetest {

struct ProgramResult {
  int exitCode;  // -1: timed out (killed), -2: crashed
  QString out, err;
};

// Runs `program` with `arguments` (and QT_QPA_PLATFORM=offscreen) until it exits or
// `timeoutMs` passes.
inline ProgramResult runProgram(const QString& program, const QStringList& arguments,
                                int timeoutMs) {
  QProcess process;
  QProcessEnvironment env = QProcessEnvironment::systemEnvironment();
  env.insert("QT_QPA_PLATFORM", "offscreen");
  process.setProcessEnvironment(env);
  process.start(program, arguments);
  if (!process.waitForFinished(timeoutMs)) {
    process.kill();
    process.waitForFinished();
    return {-1, QString::fromUtf8(process.readAllStandardOutput()), "timed out"};
  }
  return {process.exitStatus() == QProcess::NormalExit ? process.exitCode() : -2,
          QString::fromUtf8(process.readAllStandardOutput()),
          QString::fromUtf8(process.readAllStandardError())};
}

}  // namespace saetest
