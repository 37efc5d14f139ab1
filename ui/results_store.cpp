#include "results_store.h"

#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QRegularExpression>
#include <QSaveFile>
#include <QStandardPaths>
#include <algorithm>
#include <exception>

#include "format.h"

ResultsStore::ResultsStore(const QString& directory, QObject* parent) : QObject(parent) {
  dir_ = directory.isEmpty() ? defaultDirectory() : directory;
}

QString ResultsStore::defaultDirectory() {
  const QString env = qEnvironmentVariable("BRISK_RESULTS_DIR");
  if (!env.isEmpty()) return env;
  return QStandardPaths::writableLocation(QStandardPaths::AppDataLocation) + QStringLiteral("/results");
}

QString ResultsStore::sanitize(const QString& name) {
  // Only what every file system takes; the name stays readable.
  QString s = name.trimmed();
  s.replace(QRegularExpression(QStringLiteral("[/\\\\:*?\"<>|\\x00-\\x1f]")), QStringLiteral("_"));
  while (s.startsWith(QLatin1Char('.'))) s.remove(0, 1);
  return s.left(120);
}

QList<ResultsStore::Entry> ResultsStore::list() const {
  QList<Entry> entries;
  const QFileInfoList files =
      QDir(dir_).entryInfoList({QStringLiteral("*.json")}, QDir::Files | QDir::Readable, QDir::Time);
  QHash<QString, Cached> kept;
  for (const QFileInfo& fi : files) {
    const QString path = fi.absoluteFilePath();
    auto it = cache_.constFind(path);
    if (it != cache_.constEnd() && it->modified == fi.lastModified() && it->size == fi.size()) {
      kept.insert(path, *it);
      entries.append(it->entry);
      continue;
    }
    Entry e;
    e.name = fi.completeBaseName();
    e.date = fi.lastModified();
    e.path = path;
    try {
      const std::vector<brisk::BenchResult> runs = brisk::load_results(path.toStdString());
      e.runs = int(runs.size());
      for (const auto& r : runs) {
        const QString label = QString::fromStdString(r.label);
        if (!e.labels.contains(label)) e.labels.append(label);
        // A run that failed before its model loaded has no model info: its configuration names the file.
        brisk::ModelInfo info = r.model;
        if (info.path.empty() && info.name.empty()) info.path = r.config.model;
        const QString model = fmt::modelName(info);
        if (!e.models.contains(model)) e.models.append(model);
      }
    } catch (const std::exception& ex) {
      e.runs = -1;
      e.error = QString::fromUtf8(ex.what());
    }
    kept.insert(path, Cached{fi.lastModified(), fi.size(), e});
    entries.append(e);
  }
  cache_ = std::move(kept);
  return entries;
}

QString ResultsStore::save(const std::vector<brisk::BenchResult>& runs, const QString& name, QString* error) {
  auto fail = [&](const QString& why) {
    if (error) *error = why;
    return QString();
  };
  if (!QDir().mkpath(dir_)) return fail(tr("%1: cannot create the results directory").arg(dir_));
  QString base = sanitize(name);
  if (base.isEmpty()) base = QStringLiteral("results");
  QString path = QDir(dir_).filePath(base + QStringLiteral(".json"));
  for (int i = 2; QFileInfo::exists(path); ++i)
    path = QDir(dir_).filePath(QStringLiteral("%1 (%2).json").arg(base).arg(i));
  std::string json;
  try {
    json = brisk::results_to_json(runs);
  } catch (const std::exception& e) {
    return fail(QString::fromUtf8(e.what()));
  }
  QSaveFile f(path);
  if (!f.open(QIODevice::WriteOnly)) return fail(tr("%1: %2").arg(path, f.errorString()));
  f.write(json.data(), qint64(json.size()));
  if (!f.commit()) return fail(tr("%1: %2").arg(path, f.errorString()));
  Q_EMIT changed();
  return path;
}

std::vector<brisk::BenchResult> ResultsStore::load(const QString& path) const {
  return brisk::load_results(path.toStdString());
}

QString ResultsStore::rename(const QString& path, const QString& newName, QString* error) {
  auto fail = [&](const QString& why) {
    if (error) *error = why;
    return QString();
  };
  const QString base = sanitize(newName);
  if (base.isEmpty()) return fail(tr("The name is empty"));
  const QString target = QFileInfo(path).absoluteDir().filePath(base + QStringLiteral(".json"));
  if (QFileInfo(target).absoluteFilePath() == QFileInfo(path).absoluteFilePath()) return target;
  if (QFileInfo::exists(target)) return fail(tr("%1: a result with this name exists").arg(target));
  if (!QFile::rename(path, target)) return fail(tr("%1: cannot rename to %2").arg(path, target));
  Q_EMIT changed();
  return target;
}

bool ResultsStore::remove(const QString& path, QString* error) {
  QFile f(path);
  if (!f.remove()) {
    if (error) *error = tr("%1: %2").arg(path, f.errorString());
    return false;
  }
  Q_EMIT changed();
  return true;
}
