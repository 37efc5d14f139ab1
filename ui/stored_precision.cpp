#include "stored_precision.h"

#include <QDateTime>
#include <QFileInfo>
#include <QHash>
#include <QMutex>
#include <QMutexLocker>

namespace {
QMutex& mutex() {
  static QMutex m;
  return m;
}
QHash<QString, QString>& table() {
  static QHash<QString, QString> t;
  return t;
}
// A file (or safetensors folder) with its size and time; "demo" and other
// names that are no file stand for themselves.
QString key(const std::string& path) {
  const QString p = QString::fromStdString(path);
  const QFileInfo fi(p);
  if (!fi.exists()) return p;
  return QStringLiteral("%1|%2|%3")
      .arg(fi.absoluteFilePath())
      .arg(fi.size())
      .arg(fi.lastModified().toMSecsSinceEpoch());
}
}  // namespace

void StoredPrecision::record(const std::string& path, const QString& precision) {
  const QString k = key(path);
  QMutexLocker lock(&mutex());
  table().insert(k, precision);
}

QString StoredPrecision::lookup(const std::string& path) {
  const QString k = key(path);
  QMutexLocker lock(&mutex());
  return table().value(k);
}
