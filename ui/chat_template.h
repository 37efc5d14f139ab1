// Turns a chat (system prompt, user/assistant turns) into one prompt string
// for a completion engine. Two formats: Llama-2 chat ("[INST] ... [/INST]")
// and a plain "User: ...\nAssistant:" transcript for models without one.
// Pure logic: no widgets, no engine calls.
#pragma once
#include <QList>
#include <QString>
#include <QStringList>

#include "brisk/model_info.h"

struct ChatMessage {
  enum class Role { User, Assistant };
  Role role = Role::User;
  QString text;
};

class ChatTemplate {
 public:
  enum class Kind { Llama2, Plain };

  explicit ChatTemplate(Kind kind = Kind::Plain) : kind_(kind) {}

  // The format a model most likely expects. ModelInfo carries no chat
  // template and the UI cannot read the vocabulary, so this is a heuristic:
  // Llama-2 "[INST]" for Llama/Mistral-family models with the 32000-piece
  // Llama-2 sentencepiece vocabulary, or whose name says llama-2/mistral
  // chat/instruct; plain otherwise (the demo model, TinyStories models, ...).
  static Kind detect(const brisk::ModelInfo& info);
  static QString kindName(Kind kind);  // "Llama-2 [INST]", "Plain"

  Kind kind() const { return kind_; }

  // The prompt that asks the model for the next assistant turn: every
  // message in order, ending where the assistant's answer starts. The
  // engine adds BOS itself; turn separators that are special tokens
  // (</s><s>) are left out because a text prompt cannot express them.
  QString build(const QList<ChatMessage>& messages, const QString& system = {}) const;

  // Stop strings that end the assistant's turn (the plain format would
  // otherwise go on writing the user's next line). Empty for Llama-2,
  // which ends its turn with EOS.
  QStringList stopStrings() const;

 private:
  Kind kind_;
};
