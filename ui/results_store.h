// The local results store: a directory of results files (results_to_json,
// schema "brisk.results"), one per saved matrix, named after it. The
// directory is the constructor's argument, else $BRISK_RESULTS_DIR, else
// <AppDataLocation>/results.
#pragma once
#include <QDateTime>
#include <QHash>
#include <QList>
#include <QObject>
#include <QString>
#include <QStringList>
#include <vector>

#include "brisk/bench_matrix.h"

class ResultsStore : public QObject {
  Q_OBJECT

 public:
  struct Entry {
    QString name;    // the file name without ".json"
    QDateTime date;  // when the file was last written
    int runs = 0;    // -1: the file could not be read
    QString path;
    QStringList labels;  // the runs' labels, distinct, in order
    QStringList models;  // the runs' models as fmt::modelName names them, distinct, in order
    QString error;       // why the file could not be read
  };

  explicit ResultsStore(const QString& directory = {}, QObject* parent = nullptr);

  QString directory() const { return dir_; }
  static QString defaultDirectory();

  // Newest first.
  QList<Entry> list() const;
  // Writes the runs as <name>.json (a free name: "name (2).json" when taken)
  // and returns its path; empty, with *error set, on failure.
  QString save(const std::vector<brisk::BenchResult>& runs, const QString& name, QString* error = nullptr);
  // Throws brisk::Error naming the file on bad input.
  std::vector<brisk::BenchResult> load(const QString& path) const;
  // Returns the new path; empty, with *error set, when the name is empty,
  // taken or the file cannot be renamed.
  QString rename(const QString& path, const QString& newName, QString* error = nullptr);
  bool remove(const QString& path, QString* error = nullptr);

 Q_SIGNALS:
  void changed();

 private:
  static QString sanitize(const QString& name);

  QString dir_;
  // Summaries of files already read, keyed by path, valid while the file's
  // size and modification time stay the same.
  struct Cached {
    QDateTime modified;
    qint64 size = 0;
    Entry entry;
  };
  mutable QHash<QString, Cached> cache_;
};
