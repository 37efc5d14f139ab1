// The playground: a prompt (completion mode) or a conversation (chat mode),
// every sampling knob, Generate/Stop, and the response streaming in token
// by token with its numbers. It only emits requests and shows what it is
// told; MainWindow talks to the engine.
#pragma once
#include <QString>
#include <QWidget>

#include "brisk/model_info.h"
#include "brisk/sampling_params.h"
#include "chat_template.h"
#include "generation_stats.h"
#include "metatypes.h"  // before moc sees the brisk types in signals

class ChatTranscript;
class QButtonGroup;
class QCheckBox;
class QComboBox;
class QLabel;
class QLineEdit;
class QPlainTextEdit;
class QPushButton;
class QSplitter;
class QStackedWidget;
class QTextBrowser;
class QTimer;
class SamplingForm;
class TokenView;

class PlaygroundView : public QWidget {
  Q_OBJECT

 public:
  enum class Mode { Completion, Chat };
  // Template choice in chat mode: Auto follows ChatTemplate::detect.
  enum class TemplateChoice { Auto, Llama2, Plain };

  explicit PlaygroundView(QWidget* parent = nullptr);

  Mode mode() const { return mode_; }
  QString prompt() const;  // the text in the input box
  void setPrompt(const QString& prompt);
  brisk::SamplingParams params() const;
  void setParams(const brisk::SamplingParams& params);
  // Completion mode: the streamed text. Chat mode: the last assistant turn.
  QString outputText() const;
  QString statusText() const;
  bool isGenerating() const { return generating_; }
  // The prompt string last sent to the engine (chat: built by the template).
  QString lastSentPrompt() const { return lastSent_; }

  TemplateChoice templateChoice() const;
  void setTemplateChoice(TemplateChoice choice);
  ChatTemplate chatTemplate() const;  // the one in effect
  QString systemPrompt() const;
  void setSystemPrompt(const QString& text);
  bool showTokens() const;
  void setShowTokens(bool show);

  QPushButton* generateButton() const { return generate_; }
  QPushButton* stopButton() const { return stop_; }
  TokenView* outputView() const { return output_; }
  ChatTranscript* transcript() const { return transcript_; }
  SamplingForm* samplingForm() const { return sampling_; }

 public Q_SLOTS:
  void setMode(PlaygroundView::Mode mode);
  void setModel(const brisk::ModelInfo& info);  // picks the Auto chat template
  void setModelReady(bool ready);
  void setGenerating(bool generating);
  void clearOutput();  // completion: the output; chat: the conversation
  void appendText(const QString& text, double probability = -1, const TokenAlternatives& alternatives = {});
  void showFinished(const GenerationStats& stats);
  void showMessage(const QString& text);
  // A benchmark runs on this machine: a warning shows, and a generation that
  // overlapped it says so beside its figures.
  void setBenchmarkRunning(bool running);
  // The engine did not take the request: undo what requestGenerate added.
  void requestRejected(const QString& why);
  // Same as pressing Generate/Send: emits generateRequested when allowed.
  void requestGenerate();

 Q_SIGNALS:
  void generateRequested(const QString& prompt, const brisk::SamplingParams& params);
  void stopRequested();
  void modeChanged(PlaygroundView::Mode mode);

 private:
  void showEvent(QShowEvent* event) override;
  void updateButtons();
  void updateModeWidgets();
  void scheduleChatRender();
  void renderChat();

  QSplitter* split_ = nullptr;
  bool sized_ = false;
  Mode mode_ = Mode::Completion;
  brisk::ModelInfo model_;
  bool hasModel_ = false;
  QButtonGroup* modeGroup_;
  QWidget* chatOptions_;
  QComboBox* template_;
  QLineEdit* system_;
  QPushButton* clearChat_;
  QCheckBox* showTokens_;
  QLabel* inputLabel_;
  QPlainTextEdit* prompt_;
  SamplingForm* sampling_;
  QPushButton* generate_;
  QPushButton* stop_;
  QLabel* outputLabel_;
  QStackedWidget* outputStack_;
  TokenView* output_;
  QTextBrowser* chatView_;
  ChatTranscript* transcript_;
  QTimer* chatRender_;
  QLabel* status_;
  QLabel* benchmarkWarning_ = nullptr;
  bool benchmarkRunning_ = false;
  bool sharedWithBenchmark_ = false;  // the current or last generation overlapped a benchmark
  QString lastSent_;
  int lastMaxTokens_ = 0;  // of the request sent last: a stop for length short of it was the context
  bool ready_ = false;
  bool generating_ = false;
};
