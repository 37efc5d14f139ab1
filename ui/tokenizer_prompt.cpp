#include "tokenizer_prompt.h"

#include <QFileDialog>
#include <QFileInfo>

#include "brisk/model_tools.h"

QString askLlama2cTokenizer(QWidget* parent, const QString& checkpoint) {
  const QString beside = QString::fromStdString(brisk::llama2c_tokenizer_beside(checkpoint.toStdString()));
  if (!beside.isEmpty() && QFileInfo(beside).completeBaseName() != QLatin1String("tokenizer")) return {};
  const QString name = QFileInfo(checkpoint).fileName();
  return QFileDialog::getOpenFileName(parent,
                                      beside.isEmpty()
                                          ? QObject::tr("Tokenizer for %1 (Cancel: none)").arg(name)
                                          : QObject::tr("Tokenizer for %1 (Cancel: %2, found beside it)")
                                                .arg(name, QFileInfo(beside).fileName()),
                                      beside.isEmpty() ? QFileInfo(checkpoint).absolutePath() : beside,
                                      QObject::tr("Tokenizers (*.model *.bin);;All files (*)"));
}
