#include "chat_template.h"

ChatTemplate::Kind ChatTemplate::detect(const brisk::ModelInfo& info) {
  const QString arch = QString::fromStdString(info.architecture).toLower();
  const QString name = (QString::fromStdString(info.name) + QLatin1Char(' ') +
                        QString::fromStdString(info.path))
                           .toLower();
  const bool llamaFamily = arch == QLatin1String("llama") || arch == QLatin1String("mistral");
  if (!llamaFamily || info.synthetic) return Kind::Plain;
  // The Llama-2 / Mistral sentencepiece vocabulary, in which "[INST]" turns are written.
  if (info.vocab_size == 32000) return Kind::Llama2;
  static const char* const kNames[] = {"llama-2", "llama2-chat", "llama 2", "llama v2", "mistral",
                                       "mixtral"};
  for (const char* n : kNames)
    if (name.contains(QLatin1String(n))) return Kind::Llama2;
  return Kind::Plain;
}

QString ChatTemplate::kindName(Kind kind) {
  return kind == Kind::Llama2 ? QStringLiteral("Llama-2 [INST]") : QStringLiteral("Plain");
}

QString ChatTemplate::build(const QList<ChatMessage>& messages, const QString& system) const {
  const QString sys = system.trimmed();
  QString out;
  if (kind_ == Kind::Llama2) {
    // [INST] <<SYS>>\n{system}\n<</SYS>>\n\n{user} [/INST] {assistant} [INST] {user} [/INST]
    bool first = true;
    for (const ChatMessage& m : messages) {
      const QString text = m.text.trimmed();
      if (m.role == ChatMessage::Role::User) {
        if (!out.isEmpty()) out += QLatin1Char(' ');
        out += QStringLiteral("[INST] ");
        if (first && !sys.isEmpty()) out += QStringLiteral("<<SYS>>\n%1\n<</SYS>>\n\n").arg(sys);
        out += text + QStringLiteral(" [/INST]");
        first = false;
      } else {
        out += QLatin1Char(' ') + text;
      }
    }
    return out;
  }
  // Plain transcript.
  if (!sys.isEmpty()) out += sys + QStringLiteral("\n\n");
  for (const ChatMessage& m : messages) {
    out += m.role == ChatMessage::Role::User ? QStringLiteral("User: ") : QStringLiteral("Assistant: ");
    out += m.text.trimmed() + QLatin1Char('\n');
  }
  out += QStringLiteral("Assistant:");
  return out;
}

QStringList ChatTemplate::stopStrings() const {
  if (kind_ == Kind::Llama2) return {};
  return {QStringLiteral("\nUser:")};
}
