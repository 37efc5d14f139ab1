#include "chat_transcript.h"

ChatTranscript::ChatTranscript(QObject* parent) : QAbstractListModel(parent) {}

int ChatTranscript::rowCount(const QModelIndex& parent) const {
  return parent.isValid() ? 0 : int(messages_.size());
}

QVariant ChatTranscript::data(const QModelIndex& index, int role) const {
  if (!index.isValid() || index.row() >= messages_.size()) return {};
  const ChatMessage& m = messages_[index.row()];
  const QString who = m.role == ChatMessage::Role::User ? tr("User") : tr("Assistant");
  switch (role) {
    case Qt::DisplayRole: return who + QStringLiteral(": ") + m.text;
    case RoleRole: return who;
    case TextRole: return m.text;
    default: return {};
  }
}

QHash<int, QByteArray> ChatTranscript::roleNames() const {
  return {{Qt::DisplayRole, "display"}, {RoleRole, "role"}, {TextRole, "text"}};
}

void ChatTranscript::addMessage(ChatMessage::Role role, const QString& text) {
  const int row = int(messages_.size());
  beginInsertRows({}, row, row);
  messages_.append(ChatMessage{role, text});
  endInsertRows();
}

void ChatTranscript::appendToLast(const QString& text) {
  if (messages_.isEmpty() || text.isEmpty()) return;
  messages_.last().text += text;
  const QModelIndex i = index(int(messages_.size()) - 1);
  Q_EMIT dataChanged(i, i, {Qt::DisplayRole, TextRole});
}

void ChatTranscript::removeLast() {
  if (messages_.isEmpty()) return;
  const int row = int(messages_.size()) - 1;
  beginRemoveRows({}, row, row);
  messages_.removeLast();
  endRemoveRows();
}

void ChatTranscript::clear() {
  beginResetModel();
  messages_.clear();
  endResetModel();
}
