// The tokenizer for a llama2.c checkpoint opened in the window: such files
// carry no vocabulary, and the loader takes one lying beside them.
#pragma once
#include <QString>

class QWidget;

// "" when the loader's own choice stands: a tokenizer named for the
// checkpoint's vocabulary (tokN.model, tokN.bin) lies beside it, or the user
// cancelled. Otherwise asks, starting at the generic tokenizer.model/.bin the
// loader would take (it may belong to another vocabulary) or in the folder.
QString askLlama2cTokenizer(QWidget* parent, const QString& checkpoint);
