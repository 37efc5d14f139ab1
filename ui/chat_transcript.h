// The playground's chat: user and assistant turns as a list model. The
// assistant's turn grows as tokens stream in (appendToLast).
#pragma once
#include <QAbstractListModel>
#include <QList>

#include "chat_template.h"

class ChatTranscript : public QAbstractListModel {
  Q_OBJECT

 public:
  enum Roles { RoleRole = Qt::UserRole + 1, TextRole };

  explicit ChatTranscript(QObject* parent = nullptr);

  int rowCount(const QModelIndex& parent = {}) const override;
  QVariant data(const QModelIndex& index, int role = Qt::DisplayRole) const override;
  QHash<int, QByteArray> roleNames() const override;

  const QList<ChatMessage>& messages() const { return messages_; }
  void addMessage(ChatMessage::Role role, const QString& text);
  // Appends streamed text to the last message (an assistant turn).
  void appendToLast(const QString& text);
  // Drops the last message (e.g. an assistant turn that produced nothing).
  void removeLast();
  void clear();

 private:
  QList<ChatMessage> messages_;
};
