// Running the built brisk-cli (BRISK_CLI_PATH) from a test, with a time
// limit, and failing the test with the whole command, exit code and output
// when something goes wrong. Shared by the e2e CLI suites.
#pragma once
#include <QByteArray>
#include <QMap>
#include <QString>
#include <QStringList>
#include <QtTest>

struct CliRun {
  int code = -1;
  bool crashed = false, timed_out = false, failed_to_start = false;
  QByteArray out, err;
  QString command;
};

// program empty: brisk-cli. env: variables to set; an empty value removes one.
CliRun runProgram(const QString& program, const QStringList& args, int timeout_ms = 60000,
                  const QMap<QString, QString>& env = {});
CliRun runCli(const QStringList& args, int timeout_ms = 60000);
CliRun runCli(const QStringList& args, const QMap<QString, QString>& env, int timeout_ms = 60000);
// The command, exit code and (the start of) stdout and stderr, for failure messages.
QString describe(const CliRun& r);

// Checks that a run started, finished within its limit and did not crash.
#define CHECK_RAN(var)                                                                                 \
  QVERIFY2(!(var).failed_to_start, qPrintable(QStringLiteral("cannot start %1").arg(BRISK_CLI_PATH))); \
  QVERIFY2(!(var).timed_out, qPrintable(QStringLiteral("timed out after 60 s: ") + describe(var)));    \
  QVERIFY2(!(var).crashed, qPrintable(QStringLiteral("crashed: ") + describe(var)))

// Runs brisk-cli into `var`; fails the test when it could not start, timed
// out or crashed.
#define RUN_CLI(var, ...)                              \
  const CliRun var = runCli(QStringList{__VA_ARGS__}); \
  CHECK_RAN(var)

#define EXPECT_EXIT(var, expected) QVERIFY2((var).code == (expected), qPrintable(describe(var)))
#define EXPECT_IN(bytes, needle, var)                 \
  QVERIFY2(QString::fromUtf8(bytes).contains(needle), \
           qPrintable(QStringLiteral("expected '%1' in the output of ").arg(needle) + describe(var)))
