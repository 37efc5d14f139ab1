// One of the model's most likely tokens at a generated position, as the
// token view's hover lists them.
#pragma once
#include <QString>
#include <QVector>
#include <cstdint>

struct TokenAlternative {
  qint32 id = 0;
  QString text;              // decoded alone (leading-space markers shown as spaces)
  double probability = 0;    // under the model, before penalties and temperature
};
using TokenAlternatives = QVector<TokenAlternative>;
