#include "token_view.h"

#include <QFontDatabase>
#include <algorithm>
#include <QScrollBar>
#include <QTextBlock>
#include <QTextCursor>

namespace {
const QColor kChip[2] = {QColor(0xdc, 0xe8, 0xfa), QColor(0xf6, 0xe0, 0xf2)};
const QColor kHighlight(0xff, 0xc1, 0x07);
}  // namespace

TokenView::TokenView(QWidget* parent) : QTextEdit(parent) {
  setReadOnly(true);
  setUndoRedoEnabled(false);
  setAcceptRichText(false);
  setFont(QFontDatabase::systemFont(QFontDatabase::FixedFont));
  setTextInteractionFlags(Qt::TextSelectableByMouse | Qt::TextSelectableByKeyboard);
  flushTimer_.setSingleShot(true);
  flushTimer_.setInterval(kFlushMs);
  connect(&flushTimer_, &QTimer::timeout, this, &TokenView::flush);
}

QString TokenView::text() const {
  const_cast<TokenView*>(this)->flush();
  return toPlainText();
}

QTextCharFormat TokenView::formatFor(int index) const {
  QTextCharFormat f;
  if (index == highlight_) {
    f.setBackground(kHighlight);
    f.setFontWeight(QFont::Bold);
    f.setFontUnderline(true);
    f.setToolTip(tr("First token where the two outputs differ (token %1)").arg(index + 1));
  } else if (showTokens_) {
    const double p = index < probs_.size() ? probs_[index] : -1;
    if (p >= 0) {
      // Red (unlikely) to green (certain): where the model hesitated.
      f.setBackground(QColor::fromHsvF(0.33 * std::clamp(p, 0.0, 1.0), 0.35, 1.0));
      f.setToolTip(chunkToolTip(index));
    } else {
      f.setBackground(kChip[index % 2]);
      f.setToolTip(tr("Token %1").arg(index + 1));
    }
  }
  return f;
}

namespace {
// A token's text as a hover shows it: whitespace made visible.
QString shownToken(const QString& t) {
  QString s = t.toHtmlEscaped();
  s.replace(QLatin1Char('\n'), QStringLiteral("↵"));
  s.replace(QLatin1Char(' '), QStringLiteral("␣"));
  return s.isEmpty() ? QStringLiteral("∅") : s;
}
}  // namespace

QString TokenView::chunkToolTip(int index) const {
  if (index < 0 || index >= chunks_.size()) return {};
  const double p = chunkProbability(index);
  QString tip = tr("<b>Token %1</b> <code>%2</code>").arg(index + 1).arg(shownToken(chunks_[index]));
  if (p >= 0) tip += tr(" · p = %1").arg(p, 0, 'f', 3);
  const TokenAlternatives alts = chunkAlternatives(index);
  if (!alts.isEmpty()) {
    tip += QStringLiteral("<table cellspacing=0 cellpadding=1>");
    for (const TokenAlternative& a : alts)
      tip += QStringLiteral("<tr><td><code>%1</code></td><td align=right>&nbsp;%2</td></tr>")
                 .arg(shownToken(a.text))
                 .arg(a.probability, 0, 'f', 3);
    tip += QStringLiteral("</table>");
  }
  return tip;
}

void TokenView::appendChunk(const QString& text, double probability, const TokenAlternatives& alternatives) {
  chunks_.append(text);
  probs_.append(probability);
  alts_.append(alternatives);
  if (!flushTimer_.isActive()) flushTimer_.start();
}

void TokenView::flush() {
  flushTimer_.stop();
  if (drawn_ >= chunks_.size()) return;
  QScrollBar* bar = verticalScrollBar();
  const bool atBottom = bar->value() >= bar->maximum() - 4;
  QTextCursor c(document());
  c.movePosition(QTextCursor::End);
  c.beginEditBlock();  // one layout for the batch
  for (; drawn_ < chunks_.size(); ++drawn_) {
    starts_.append(c.position());
    c.insertText(chunks_[drawn_], formatFor(drawn_));
  }
  c.endEditBlock();
  end_ = c.position();
  if (atBottom) bar->setValue(bar->maximum());
}

void TokenView::clearChunks() {
  flushTimer_.stop();
  chunks_.clear();
  probs_.clear();
  alts_.clear();
  starts_.clear();
  drawn_ = 0;
  end_ = 0;
  highlight_ = -1;
  clear();
}

void TokenView::setShowTokens(bool show) {
  if (show == showTokens_) return;
  showTokens_ = show;
  render();
}

void TokenView::setHighlightedChunk(int index) {
  if (index == highlight_) return;
  flush();
  const int old = highlight_;
  highlight_ = index;
  for (int i : {old, index}) {
    if (i < 0 || i >= chunks_.size()) continue;
    QTextCursor c(document());
    c.setPosition(starts_[i]);
    c.setPosition(i + 1 < starts_.size() ? starts_[i + 1] : end_, QTextCursor::KeepAnchor);
    c.setCharFormat(formatFor(i));
  }
}

void TokenView::render() {
  flushTimer_.stop();
  const int scroll = verticalScrollBar()->value();
  clear();
  starts_.clear();
  QTextCursor c(document());
  c.beginEditBlock();
  for (int i = 0; i < chunks_.size(); ++i) {
    starts_.append(c.position());
    c.insertText(chunks_[i], formatFor(i));
  }
  c.endEditBlock();
  drawn_ = int(chunks_.size());
  end_ = c.position();
  verticalScrollBar()->setValue(scroll);
}

QTextCharFormat TokenView::formatAt(int index) const {
  const_cast<TokenView*>(this)->flush();
  if (index < 0 || index >= chunks_.size()) return {};
  const int end = index + 1 < starts_.size() ? starts_[index + 1] : end_;
  if (end <= starts_[index]) return {};
  QTextCursor c(document());
  c.setPosition(starts_[index] + 1);  // the format of the character before the cursor
  return c.charFormat();
}

bool TokenView::chunkHighlighted(int index) const {
  return formatAt(index).background().color() == kHighlight;
}

bool TokenView::chunkHasChipBackground(int index) const {
  const QColor c = formatAt(index).background().color();
  return formatAt(index).background().style() != Qt::NoBrush && c != kHighlight;
}
