// A page of the workbench that a later version fills in (Benchmark,
// Reports): says what will come there and what to use meanwhile. Shows no
// data, real or made up.
#pragma once
#include <QStringList>
#include <QWidget>

class WorkbenchPlaceholder : public QWidget {
  Q_OBJECT

 public:
  WorkbenchPlaceholder(const QString& title, const QString& summary, const QStringList& plans,
                       const QString& meanwhile, QWidget* parent = nullptr);
};
