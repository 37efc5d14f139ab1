#include "kv_block_map.h"

#include <QEvent>
#include <QHelpEvent>
#include <QMap>
#include <QMouseEvent>
#include <QPainter>
#include <QSet>
#include <QStringList>
#include <QToolTip>
#include <algorithm>
#include <cmath>

#include "format.h"

namespace {
constexpr int kMargin = 6;
constexpr int kSwatch = 11;

// Tableau-like hues: distinct neighbours, readable on white, none grey.
const QColor& paletteColor(int i) {
  static const QColor colors[] = {
      QColor(0x4e, 0x79, 0xa7), QColor(0xf2, 0x8e, 0x2b), QColor(0xe1, 0x57, 0x59),
      QColor(0x59, 0xa1, 0x4f), QColor(0xb0, 0x7a, 0xa1), QColor(0x76, 0xb7, 0xb2),
      QColor(0xed, 0xc9, 0x48), QColor(0xff, 0x9d, 0xa7), QColor(0x9c, 0x75, 0x5f),
      QColor(0x49, 0x98, 0x94), QColor(0xd3, 0x72, 0x95), QColor(0x8c, 0xd1, 0x7d)};
  return colors[i % int(std::size(colors))];
}

// c mixed with white: t = 0 keeps c, t = 1 gives white.
QColor tint(const QColor& c, double t) {
  return QColor::fromRgbF(float(c.redF() + (1 - c.redF()) * t), float(c.greenF() + (1 - c.greenF()) * t),
                          float(c.blueF() + (1 - c.blueF()) * t));
}
}  // namespace

KvBlockMap::KvBlockMap(QWidget* parent) : QWidget(parent) {
  setObjectName(QStringLiteral("kvBlockMap"));
  setMouseTracking(true);
  setSizePolicy(QSizePolicy::Expanding, QSizePolicy::Expanding);
  setToolTip(tr("The KV cache, one square per block"));  // replaced per block in event()
}

QColor KvBlockMap::colorForRequest(qint64 id) { return id < 0 ? freeColor() : paletteColor(int(id % 12)); }
QColor KvBlockMap::freeColor() { return QColor(0xdd, 0xe1, 0xe6); }

void KvBlockMap::setBlocks(const QVector<brisk::KvBlockState>& blocks) {
  blocks_ = blocks;
  used_ = shared_ = 0;
  QSet<qint64> owners;
  int fullest = 1;
  for (const auto& b : blocks_) {
    fullest = std::max(fullest, b.filled);
    if (b.owner < 0) continue;
    ++used_;
    if (b.refcount > 1) ++shared_;
    owners.insert(b.owner);
  }
  owners_ = int(owners.size());
  observedBlockSize_ = std::max(observedBlockSize_, fullest);
  if (hoveredOwner_ >= 0 && !owners.contains(hoveredOwner_)) hoveredOwner_ = -1;
  update();
}

void KvBlockMap::setBlockSize(int tokens) {
  blockSize_ = std::max(0, tokens);
  update();
}

int KvBlockMap::blockSize() const { return blockSize_ > 0 ? blockSize_ : observedBlockSize_; }

qint64 KvBlockMap::ownerAt(int block) const {
  if (block < 0 || block >= blocks_.size()) return -1;
  return blocks_[block].owner < 0 ? -1 : blocks_[block].owner;
}

QSize KvBlockMap::sizeHint() const { return QSize(480, 150); }
QSize KvBlockMap::minimumSizeHint() const { return QSize(160, legendHeight() + 3 * (kMinCell + 1) + 2 * kMargin); }


int KvBlockMap::blocksPerCell() const {
  relayout();
  return perCell_;
}

void KvBlockMap::relayout() const {
  if (layoutSize_ == size() && layoutCount_ == blocks_.size()) return;  // the legend's height too
  layoutSize_ = size();
  layoutCount_ = blocks_.size();
  const QRect area = rect().adjusted(kMargin, kMargin + legendHeight(), -kMargin, -kMargin);
  const int n = int(blocks_.size());
  const int w = std::max(1, area.width()), h = std::max(1, area.height());
  perCell_ = 1;
  bool fits = false;
  for (int cell = kMaxCell; cell >= kMinCell; --cell) {
    const int gap = cell >= 9 ? 2 : 1;
    const int pitch = cell + gap;
    const int cols = std::max(1, (w + gap) / pitch);
    const int rows = (n + cols - 1) / cols;
    cell_ = cell;
    pitch_ = pitch;
    cols_ = cols;
    if (rows * pitch - gap <= h) {
      fits = true;
      break;
    }
  }
  int cells = n;
  if (!fits && n > 0) {
    // Summarise: each square stands for several consecutive blocks.
    const int rowsFit = std::max(1, (h + 1) / pitch_);
    perCell_ = (n + cols_ * rowsFit - 1) / (cols_ * rowsFit);
    cells = (n + perCell_ - 1) / perCell_;
  }
  const int rows = std::max(1, (cells + cols_ - 1) / cols_);
  const int usedCols = std::min(cols_, std::max(1, cells));
  grid_ = QRect(area.left(), area.top(), usedCols * pitch_ - (pitch_ - cell_), rows * pitch_ - (pitch_ - cell_));
}

QRect KvBlockMap::blockRect(int block) const {
  if (block < 0 || block >= blocks_.size()) return {};
  relayout();
  const int c = block / perCell_;
  return QRect(grid_.left() + (c % cols_) * pitch_, grid_.top() + (c / cols_) * pitch_, cell_, cell_);
}

int KvBlockMap::blockAt(const QPoint& pos) const {
  relayout();
  if (blocks_.isEmpty() || pos.x() < grid_.left() || pos.y() < grid_.top()) return -1;
  const int col = (pos.x() - grid_.left()) / pitch_, row = (pos.y() - grid_.top()) / pitch_;
  if (col >= cols_) return -1;
  // The gaps between squares count as the square before them: no flicker.
  const int block = (row * cols_ + col) * perCell_;
  return block < blocks_.size() ? block : -1;
}

KvBlockMap::Cell KvBlockMap::cellAt(int cell) const {
  relayout();
  Cell c;
  const int first = cell * perCell_, last = std::min<int>(first + perCell_, int(blocks_.size()));
  if (first >= last) return c;
  const double perBlock = blockSize();
  if (perCell_ == 1) {
    const auto& b = blocks_[first];
    if (b.owner < 0) return c;
    c.owner = b.owner;
    c.used = 1;
    c.filled = std::clamp(b.filled / perBlock, 0.0, 1.0);
    c.shared = b.refcount > 1;
    return c;
  }
  QMap<qint64, int> count;
  int used = 0;
  double filled = 0;
  for (int i = first; i < last; ++i) {
    const auto& b = blocks_[i];
    if (b.owner < 0) continue;
    ++used;
    ++count[b.owner];
    filled += std::clamp(b.filled / perBlock, 0.0, 1.0);
    c.shared |= b.refcount > 1;
  }
  if (used == 0) return c;
  c.owner = std::max_element(count.begin(), count.end()).key();
  c.used = double(used) / (last - first);
  c.filled = filled / used;
  return c;
}

void KvBlockMap::paintSwatch(QPainter& p, const QRect& r, const QColor& c, bool shared, double filled) const {
  if (c == freeColor()) {
    p.fillRect(r, c);
    return;
  }
  if (filled >= 0.999) {
    p.fillRect(r, c);
  } else {
    // Partly filled: a light block with the filled part rising from the bottom.
    p.fillRect(r, tint(c, 0.6));
    const int hFill = int(std::lround(r.height() * filled));
    if (hFill > 0) p.fillRect(QRect(r.left(), r.bottom() - hFill + 1, r.width(), hFill), c);
  }
  if (shared) {
    const QColor dark = c.darker(190);
    if (r.width() >= 7) p.fillRect(r, QBrush(dark, Qt::BDiagPattern));
    p.setPen(QPen(dark, 1));
    p.setBrush(Qt::NoBrush);
    p.drawRect(r.adjusted(0, 0, -1, -1));
  }
}

QString KvBlockMap::statsText() const {
  relayout();
  QString stats = tr("%1/%2 %3 used")
                      .arg(used_)
                      .arg(blocks_.size())
                      .arg(blocks_.size() == 1 ? tr("block") : tr("blocks"));
  if (!blocks_.isEmpty()) {
    const double pct = 100.0 * used_ / blocks_.size();
    stats += QStringLiteral(" (%1%)").arg(pct, 0, 'f', pct > 0 && pct < 10 ? 1 : 0);
  }
  stats += owners_ == 1 ? tr(" · 1 request") : tr(" · %1 requests").arg(owners_);
  if (shared_ > 0) stats += tr(" · %1 shared").arg(shared_);
  if (perCell_ > 1) stats += tr(" · 1 square = %1 blocks").arg(perCell_);
  return stats;
}

QString KvBlockMap::legendText() const {
  return legendLabels().join(QStringLiteral(" · ")) + QStringLiteral(" · ") + statsText();
}

QStringList KvBlockMap::legendLabels() const {
  return {tr("free"), tr("in use"), tr("partly filled"), tr("shared")};
}

int KvBlockMap::legendSwatchesWidth() const {
  const QFontMetrics fm = fontMetrics();
  int w = 0;
  for (const QString& label : legendLabels()) w += kSwatch + 4 + fm.horizontalAdvance(label) + 12;
  return w;
}

bool KvBlockMap::legendWraps() const {
  // Decided on the widest the numbers can get, so the layout does not jump.
  QFont bold = font();
  bold.setBold(true);
  const QString widest = tr("%1/%1 blocks used (100%) · 99 requests").arg(blocks_.size());
  return legendSwatchesWidth() + QFontMetrics(bold).horizontalAdvance(widest) > width() - 2 * kMargin - 4;
}

int KvBlockMap::legendHeight() const {
  const int line = fontMetrics().height() + 8;
  return legendWraps() ? 2 * line - 6 : line;
}

void KvBlockMap::paintLegend(QPainter& p, const QRect& r) const {
  const QFontMetrics fm = fontMetrics();
  const bool wraps = legendWraps();
  const int lineHeight = wraps ? (r.height() + 6) / 2 : r.height();
  const QRect first(r.left(), r.top(), r.width(), lineHeight);
  int x = r.left();
  const int cy = first.top() + first.height() / 2;
  const QColor text = palette().color(QPalette::WindowText);
  const QStringList labels = legendLabels();
  auto item = [&](const QColor& c, bool shared, double filled, const QString& label) {
    const QRect sw(x, cy - kSwatch / 2, kSwatch, kSwatch);
    paintSwatch(p, sw, c, shared, filled);
    x += kSwatch + 4;
    p.setPen(text);
    p.drawText(QRect(x, first.top(), fm.horizontalAdvance(label) + 1, first.height()), Qt::AlignVCenter, label);
    x += fm.horizontalAdvance(label) + 12;
  };
  item(freeColor(), false, 0, labels[0]);
  item(colorForRequest(0), false, 1, labels[1]);
  item(colorForRequest(0), false, 0.5, labels[2]);
  item(colorForRequest(0), true, 1, labels[3]);
  QFont bold = p.font();
  bold.setBold(true);
  p.setFont(bold);
  p.setPen(text);
  const QRect statsRect = wraps ? QRect(r.left(), r.bottom() - lineHeight + 1, r.width(), lineHeight)
                                : QRect(x, r.top(), std::max(0, r.right() - x), r.height());
  p.drawText(statsRect, Qt::AlignVCenter | Qt::AlignLeft,
             QFontMetrics(bold).elidedText(statsText(), Qt::ElideRight, statsRect.width()));
  p.setFont(font());
}

void KvBlockMap::paintEvent(QPaintEvent*) {
  relayout();
  QPainter p(this);
  const QRect panel = rect().adjusted(1, 1, -1, -1);
  p.setRenderHint(QPainter::Antialiasing, true);
  p.setPen(QPen(palette().color(QPalette::Mid), 1));
  p.setBrush(palette().color(QPalette::Base));
  p.drawRoundedRect(QRectF(panel).adjusted(0.5, 0.5, -0.5, -0.5), 4, 4);
  p.setRenderHint(QPainter::Antialiasing, false);

  paintLegend(p, QRect(kMargin + 2, kMargin - 2, width() - 2 * kMargin - 4, legendHeight()));
  if (blocks_.isEmpty()) {
    p.setPen(palette().color(QPalette::PlaceholderText));
    p.drawText(rect().adjusted(0, legendHeight(), 0, 0), Qt::AlignCenter, tr("No KV cache: load a model"));
    return;
  }
  const int cells = int((blocks_.size() + perCell_ - 1) / perCell_);
  for (int i = 0; i < cells; ++i) {
    const QRect r(grid_.left() + (i % cols_) * pitch_, grid_.top() + (i / cols_) * pitch_, cell_, cell_);
    const Cell c = cellAt(i);
    if (c.owner < 0) {
      p.fillRect(r, freeColor());
      continue;
    }
    const QColor color = colorForRequest(c.owner);
    if (perCell_ > 1 && c.used < 1) {
      // A summarised square: the used share of its blocks rises from the bottom.
      p.fillRect(r, freeColor());
      const int hUsed = std::max(1, int(std::lround(r.height() * c.used)));
      p.fillRect(QRect(r.left(), r.bottom() - hUsed + 1, r.width(), hUsed), color);
      if (c.shared) {
        p.setPen(color.darker(190));
        p.setBrush(Qt::NoBrush);
        p.drawRect(r.adjusted(0, 0, -1, -1));
      }
    } else {
      paintSwatch(p, r, color, c.shared, c.filled);
    }
    if (hoveredOwner_ >= 0 && c.owner == hoveredOwner_) {
      p.setPen(QPen(palette().color(QPalette::Text), 1));
      p.setBrush(Qt::NoBrush);
      p.drawRect(r.adjusted(-1, -1, 0, 0));
    }
  }
}

QString KvBlockMap::toolTipForBlock(int block) const {
  if (block < 0 || block >= blocks_.size()) return {};
  const auto& b = blocks_[block];
  if (b.owner < 0) return tr("Block %1 · free").arg(block);
  QString s = tr("Block %1 · request %2").arg(block).arg(b.owner);
  s += QStringLiteral("\n") + tr("refcount %1%2").arg(b.refcount).arg(b.refcount > 1 ? tr(" (shared)") : QString());
  s += QStringLiteral("\n") +
       tr("filled %1/%2").arg(b.filled).arg(fmt::quantity(blockSize(), tr("slot"), tr("slots")));
  int ofOwner = 0;
  for (const auto& o : blocks_) ofOwner += o.owner == b.owner;
  s += QStringLiteral("\n") + (ofOwner == 1 ? tr("request %1 holds 1 block").arg(b.owner)
                                             : tr("request %1 holds %2 blocks").arg(b.owner).arg(ofOwner));
  return s;
}

QString KvBlockMap::cellToolTip(int firstBlock) const {
  relayout();
  if (perCell_ <= 1) return toolTipForBlock(firstBlock);
  if (firstBlock < 0 || firstBlock >= blocks_.size()) return {};
  const int first = firstBlock - firstBlock % perCell_;
  const int last = std::min<int>(first + perCell_, int(blocks_.size())) - 1;
  int used = 0, shared = 0;
  QMap<qint64, int> owners;
  for (int i = first; i <= last; ++i) {
    if (blocks_[i].owner < 0) continue;
    ++used;
    shared += blocks_[i].refcount > 1;
    ++owners[blocks_[i].owner];
  }
  QString s = tr("Blocks %1–%2 · %3 of %4 in use").arg(first).arg(last).arg(used).arg(last - first + 1);
  if (shared) s += QStringLiteral("\n") + tr("%1 shared").arg(shared);
  if (!owners.isEmpty()) {
    QStringList ids;
    for (auto it = owners.cbegin(); it != owners.cend(); ++it) ids << QString::number(it.key());
    s += QStringLiteral("\n") + tr("requests %1").arg(ids.join(QStringLiteral(", ")));
  }
  return s;
}

bool KvBlockMap::event(QEvent* e) {
  if (e->type() == QEvent::ToolTip) {
    auto* help = static_cast<QHelpEvent*>(e);
    const int block = blockAt(help->pos());
    if (block >= 0) {
      QToolTip::showText(help->globalPos(), cellToolTip(block), this, blockRect(block));
    } else {
      QToolTip::hideText();
      e->ignore();
    }
    return true;
  }
  return QWidget::event(e);
}

void KvBlockMap::mouseMoveEvent(QMouseEvent* e) {
  const int block = blockAt(e->position().toPoint());
  const qint64 owner = perCell_ == 1 ? ownerAt(block) : (block >= 0 ? cellAt(block / perCell_).owner : -1);
  if (owner != hoveredOwner_) {
    hoveredOwner_ = owner;
    update();
  }
  QWidget::mouseMoveEvent(e);
}

void KvBlockMap::leaveEvent(QEvent* e) {
  if (hoveredOwner_ >= 0) {
    hoveredOwner_ = -1;
    update();
  }
  QWidget::leaveEvent(e);
}
