#include "workbench_placeholder.h"

#include <QLabel>
#include <QVBoxLayout>

WorkbenchPlaceholder::WorkbenchPlaceholder(const QString& title, const QString& summary,
                                           const QStringList& plans, const QString& meanwhile,
                                           QWidget* parent)
    : QWidget(parent) {
  auto* layout = new QVBoxLayout(this);
  layout->setContentsMargins(24, 24, 24, 24);
  QString html = QStringLiteral("<h2>%1</h2><p>%2</p><p><b>%3</b></p><ul>")
                     .arg(title.toHtmlEscaped(), summary.toHtmlEscaped(), tr("Coming in a later version:"));
  for (const QString& p : plans) html += QStringLiteral("<li>%1</li>").arg(p.toHtmlEscaped());
  html += QStringLiteral("</ul>");
  if (!meanwhile.isEmpty())
    html += QStringLiteral("<p><b>%1</b> %2</p>").arg(tr("Meanwhile:"), meanwhile.toHtmlEscaped());
  auto* label = new QLabel(html, this);
  label->setObjectName(QStringLiteral("placeholderText"));
  label->setWordWrap(true);
  label->setAlignment(Qt::AlignTop | Qt::AlignLeft);
  label->setTextInteractionFlags(Qt::TextSelectableByMouse);
  label->setMaximumWidth(760);
  layout->addWidget(label);
  layout->addStretch(1);
}
