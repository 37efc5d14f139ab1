// Streamed output, one chunk per token (EngineController::tokenReceived).
// Shows plain text, or tokens as chips with alternating backgrounds; one
// chunk can be highlighted (A/B: where two streams first differ). Chunks
// are drawn in batches (at most every kFlushMs) so that a fast stream costs
// the GUI thread one document layout per batch, not one per token.
#pragma once
#include <QStringList>
#include <QTextEdit>
#include <QTimer>
#include <QVector>

#include "token_alternative.h"

class TokenView : public QTextEdit {
  Q_OBJECT

 public:
  static constexpr int kFlushMs = 40;

  explicit TokenView(QWidget* parent = nullptr);

  const QStringList& chunks() const { return chunks_; }
  int chunkCount() const { return int(chunks_.size()); }
  // The text on screen (pending chunks drawn first).
  QString text() const;
  bool showTokens() const { return showTokens_; }
  int highlightedChunk() const { return highlight_; }
  // Whether chunk `index` is drawn highlighted / as a chip (reads the
  // document's formats: what is on screen).
  bool chunkHighlighted(int index) const;
  bool chunkHasChipBackground(int index) const;

  // The engine's probability of chunk `index`'s token; -1 when unknown.
  double chunkProbability(int index) const { return index < probs_.size() ? probs_[index] : -1; }
  // The model's likeliest tokens at chunk `index` (empty when unknown).
  TokenAlternatives chunkAlternatives(int index) const {
    return index < alts_.size() ? alts_[index] : TokenAlternatives{};
  }
  // What hovering chunk `index` shows (rich text).
  QString chunkToolTip(int index) const;

 public Q_SLOTS:
  // probability: of the token under the model (from its log-probability),
  // -1 when unknown; chips are tinted by it.
  void appendChunk(const QString& text, double probability = -1, const TokenAlternatives& alternatives = {});
  // Draws the chunks not drawn yet.
  void flush();
  void clearChunks();
  void setShowTokens(bool show);
  // -1: none.
  void setHighlightedChunk(int index);

 private:
  QTextCharFormat formatFor(int index) const;
  void render();
  QTextCharFormat formatAt(int index) const;

  QStringList chunks_;
  QVector<double> probs_;
  QVector<TokenAlternatives> alts_;
  QVector<int> starts_;  // document position of each drawn chunk
  int drawn_ = 0;        // chunks_[0, drawn_) are in the document
  int end_ = 0;
  QTimer flushTimer_;
  bool showTokens_ = false;
  int highlight_ = -1;
};
