#include "backend_combo.h"

#include <QComboBox>
#include <QCoreApplication>
#include <QStandardItemModel>

#include "brisk/sysinfo.h"
#include "format.h"

void fillBackendCombo(QComboBox* combo) {
  combo->clear();
  const QString autoName = fmt::backendName(brisk::resolve_backend("auto"));
  combo->addItem(fmt::backendName("auto"), QStringLiteral("auto"));
  combo->setItemData(
      0,
      QCoreApplication::translate("BackendCombo", "CUDA when a device is available, else the CPU: here %1")
          .arg(autoName),
      Qt::ToolTipRole);
  auto* model = qobject_cast<QStandardItemModel*>(combo->model());
  for (const brisk::BackendStatus& b : brisk::list_backends()) {
    const int i = combo->count();
    combo->addItem(fmt::backendName(b.name), QString::fromStdString(b.name));
    combo->setItemData(i,
                       b.available ? QString::fromStdString(b.device)
                                   : QCoreApplication::translate("BackendCombo", "Unavailable: %1")
                                         .arg(QString::fromStdString(b.reason)),
                       Qt::ToolTipRole);
    if (!b.available && model) model->item(i)->setEnabled(false);
  }
}
