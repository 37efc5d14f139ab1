// ChatTemplate (which format a model gets, and the prompt it builds) and
// ChatTranscript (the playground's conversation model). No engine.
#include <QSignalSpy>
#include <QtTest>

#include "ui/chat_template.h"
#include "ui/chat_transcript.h"

namespace {
brisk::ModelInfo model(const std::string& arch, int vocab, const std::string& name = {},
                       const std::string& path = {}, bool synthetic = false) {
  brisk::ModelInfo i;
  i.architecture = arch;
  i.vocab_size = vocab;
  i.name = name;
  i.path = path;
  i.synthetic = synthetic;
  return i;
}
using Role = ChatMessage::Role;
}  // namespace

class TestChatTemplate : public QObject {
  Q_OBJECT

 private Q_SLOTS:
  void detectsLlama2ByVocabulary();
  void detectsLlama2ByName();
  void plainOtherwise();
  void llama2SingleTurn();
  void llama2WithSystemAndHistory();
  void plainTranscript();
  void stopStrings();
  void transcriptModel();
};

void TestChatTemplate::detectsLlama2ByVocabulary() {
  // The Llama-2 / Mistral 32000-piece sentencepiece vocabulary ("[INST]" turns).
  QCOMPARE(ChatTemplate::detect(model("llama", 32000)), ChatTemplate::Kind::Llama2);
  QCOMPARE(ChatTemplate::detect(model("mistral", 32000)), ChatTemplate::Kind::Llama2);
  // The shared llama-2-tiny-random GGUF: general.name "LLaMA v2", 32000 tokens.
  QCOMPARE(ChatTemplate::detect(model("llama", 32000, "LLaMA v2", "llama-2-tiny-random.gguf")),
           ChatTemplate::Kind::Llama2);
}

void TestChatTemplate::detectsLlama2ByName() {
  QCOMPARE(ChatTemplate::detect(model("llama", 32002, "Llama-2-7b-chat-hf")), ChatTemplate::Kind::Llama2);
  QCOMPARE(ChatTemplate::detect(model("llama", 32768, {}, "/models/Mistral-7B-Instruct-v0.3")),
           ChatTemplate::Kind::Llama2);
}

void TestChatTemplate::plainOtherwise() {
  // stories260K: Llama architecture, 512-token TinyStories vocabulary.
  QCOMPARE(ChatTemplate::detect(model("llama", 512, {}, "stories260K.gguf")), ChatTemplate::Kind::Plain);
  // The built-in demo model, whatever its vocabulary.
  QCOMPARE(ChatTemplate::detect(model("llama", 32000, "demo", "demo", /*synthetic=*/true)),
           ChatTemplate::Kind::Plain);
  QCOMPARE(ChatTemplate::detect(model("qwen2", 151936, "Qwen2-0.5B-Instruct")), ChatTemplate::Kind::Plain);
  QCOMPARE(ChatTemplate::detect(brisk::ModelInfo{}), ChatTemplate::Kind::Plain);
}

void TestChatTemplate::llama2SingleTurn() {
  const ChatTemplate t(ChatTemplate::Kind::Llama2);
  QCOMPARE(t.build({{Role::User, QStringLiteral("  Hello!  ")}}), QStringLiteral("[INST] Hello! [/INST]"));
}

void TestChatTemplate::llama2WithSystemAndHistory() {
  const ChatTemplate t(ChatTemplate::Kind::Llama2);
  const QList<ChatMessage> m{{Role::User, QStringLiteral("Hi")},
                             {Role::Assistant, QStringLiteral("Hello, how can I help?\n")},
                             {Role::User, QStringLiteral("Tell a story")}};
  QCOMPARE(t.build(m, QStringLiteral("Be brief.")),
           QStringLiteral("[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST] Hello, how can I help? "
                          "[INST] Tell a story [/INST]"));
  // The system prompt goes into the first turn only; blank means none.
  QCOMPARE(t.build(m.mid(0, 1), QStringLiteral("   ")), QStringLiteral("[INST] Hi [/INST]"));
}

void TestChatTemplate::plainTranscript() {
  const ChatTemplate t(ChatTemplate::Kind::Plain);
  QCOMPARE(t.build({{Role::User, QStringLiteral("Hi")}}), QStringLiteral("User: Hi\nAssistant:"));
  const QList<ChatMessage> m{{Role::User, QStringLiteral("Hi")},
                             {Role::Assistant, QStringLiteral(" Hello.")},
                             {Role::User, QStringLiteral("More")}};
  QCOMPARE(t.build(m, QStringLiteral("You are a storyteller.")),
           QStringLiteral("You are a storyteller.\n\nUser: Hi\nAssistant: Hello.\nUser: More\nAssistant:"));
}

void TestChatTemplate::stopStrings() {
  QCOMPARE(ChatTemplate(ChatTemplate::Kind::Plain).stopStrings(), QStringList{QStringLiteral("\nUser:")});
  QVERIFY(ChatTemplate(ChatTemplate::Kind::Llama2).stopStrings().isEmpty());  // ends with EOS
  QCOMPARE(ChatTemplate::kindName(ChatTemplate::Kind::Llama2), QStringLiteral("Llama-2 [INST]"));
}

void TestChatTemplate::transcriptModel() {
  ChatTranscript t;
  QSignalSpy inserted(&t, &QAbstractItemModel::rowsInserted);
  QSignalSpy changed(&t, &QAbstractItemModel::dataChanged);
  t.addMessage(Role::User, QStringLiteral("Hi"));
  t.addMessage(Role::Assistant, QString());
  QCOMPARE(inserted.count(), 2);
  t.appendToLast(QStringLiteral("Hel"));
  t.appendToLast(QStringLiteral("lo"));
  t.appendToLast(QString());  // nothing to add, no signal
  QCOMPARE(changed.count(), 2);
  QCOMPARE(t.rowCount(), 2);
  QCOMPARE(t.data(t.index(1), ChatTranscript::TextRole).toString(), QStringLiteral("Hello"));
  QCOMPARE(t.data(t.index(1), ChatTranscript::RoleRole).toString(), QStringLiteral("Assistant"));
  QCOMPARE(t.data(t.index(0), Qt::DisplayRole).toString(), QStringLiteral("User: Hi"));
  QVERIFY(!t.data(t.index(5), Qt::DisplayRole).isValid());
  t.removeLast();
  QCOMPARE(t.rowCount(), 1);
  t.clear();
  QCOMPARE(t.rowCount(), 0);
  t.appendToLast(QStringLiteral("x"));  // no message: ignored
  QCOMPARE(t.rowCount(), 0);
}

QTEST_MAIN(TestChatTemplate)
#include "test_chat_template.moc"
