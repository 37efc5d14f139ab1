#include "cli_run.h"

#include <QProcess>
#include <QProcessEnvironment>

CliRun runProgram(const QString& program, const QStringList& args, int timeout_ms,
                  const QMap<QString, QString>& env) {
  CliRun r;
  r.command = (program.isEmpty() ? QStringLiteral("brisk-cli") : program) + QLatin1Char(' ') +
              args.join(QLatin1Char(' '));
  QProcess p;
  if (!env.isEmpty()) {
    QProcessEnvironment e = QProcessEnvironment::systemEnvironment();
    for (auto it = env.begin(); it != env.end(); ++it) {
      if (it.value().isEmpty())
        e.remove(it.key());
      else
        e.insert(it.key(), it.value());
    }
    p.setProcessEnvironment(e);
  }
  p.start(program.isEmpty() ? QStringLiteral(BRISK_CLI_PATH) : program, args);
  if (!p.waitForStarted(10000)) {
    r.failed_to_start = true;
    return r;
  }
  p.closeWriteChannel();
  if (!p.waitForFinished(timeout_ms)) {
    r.timed_out = true;
    p.kill();
    p.waitForFinished(5000);
  }
  r.out = p.readAllStandardOutput();
  r.err = p.readAllStandardError();
  r.crashed = !r.timed_out && p.exitStatus() == QProcess::CrashExit;
  r.code = p.exitCode();
  return r;
}

CliRun runCli(const QStringList& args, int timeout_ms) { return runProgram(QString(), args, timeout_ms); }

CliRun runCli(const QStringList& args, const QMap<QString, QString>& env, int timeout_ms) {
  return runProgram(QString(), args, timeout_ms, env);
}

QString describe(const CliRun& r) {
  return QStringLiteral("%1\n  exit %2%3\n  stdout: %4\n  stderr: %5")
      .arg(r.command)
      .arg(r.code)
      .arg(r.crashed ? QStringLiteral(" (crashed)") : QString())
      .arg(QString::fromUtf8(r.out.left(2000)), QString::fromUtf8(r.err.left(2000)));
}
