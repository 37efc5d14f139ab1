// The paged KV cache, drawn: one small square per block, wrapping to the
// widget's width. Grey squares are free; a block held by a request takes
// that request's colour (stable per id), lighter while only partly filled
// (the filled part rises from the bottom); a block shared by several
// sequences (refcount > 1, e.g. a cached prefix) is hatched and outlined
// darker. Hovering a block names it and highlights every block of its
// request. Squares shrink with the block count down to 3 px; past that one
// square stands for several blocks (the legend says how many).
#pragma once
#include <QColor>
#include <QRect>
#include <QString>
#include <QStringList>
#include <QVector>
#include <QWidget>

#include "brisk/engine.h"

class KvBlockMap : public QWidget {
  Q_OBJECT

 public:
  static constexpr int kMinCell = 3;   // px
  static constexpr int kMaxCell = 16;  // px

  explicit KvBlockMap(QWidget* parent = nullptr);

  void setBlocks(const QVector<brisk::KvBlockState>& blocks);
  const QVector<brisk::KvBlockState>& blocks() const { return blocks_; }
  // Token slots per block (EngineConfig::block_size), for fill levels and
  // tooltips; 0 (the default) estimates it from the fullest block.
  void setBlockSize(int tokens);
  int blockSize() const;

  int usedCount() const { return used_; }    // blocks with an owner
  int totalCount() const { return int(blocks_.size()); }
  int sharedCount() const { return shared_; }  // refcount > 1
  int requestCount() const { return owners_; }  // distinct owners
  // The owning request id, -1 when the block is free or out of range.
  qint64 ownerAt(int block) const;

  // Layout queries (for tests and tooltips): how many blocks one square
  // stands for, the first block under a point (-1: none), a square's rect.
  int blocksPerCell() const;
  int blockAt(const QPoint& pos) const;
  QRect blockRect(int block) const;
  // The tooltip shown over a block ("Block 17 · request 3 · …"); for a
  // square that summarises several blocks, cellToolTip describes them all.
  QString toolTipForBlock(int block) const;
  QString cellToolTip(int firstBlock) const;
  // The legend line: "free · in use · partly filled · shared · N/M blocks
  // used (p%) · k requests[ · s shared][ · 1 square = b blocks]".
  QString legendText() const;

  // The colour of a request's blocks; stable per id.
  static QColor colorForRequest(qint64 id);
  static QColor freeColor();

  QSize sizeHint() const override;
  QSize minimumSizeHint() const override;

 protected:
  bool event(QEvent* e) override;
  void paintEvent(QPaintEvent* e) override;
  void mouseMoveEvent(QMouseEvent* e) override;
  void leaveEvent(QEvent* e) override;

 private:
  struct Cell {
    qint64 owner = -1;   // majority owner of its blocks
    double used = 0;     // fraction of its blocks in use (1 block per cell: 0 or 1)
    double filled = 0;   // fraction of the used blocks' slots holding tokens
    bool shared = false;
  };

  void relayout() const;  // when the size or the block count changed
  Cell cellAt(int cell) const;
  int legendHeight() const;  // one line, or two when the numbers do not fit beside the swatches
  bool legendWraps() const;
  int legendSwatchesWidth() const;
  QStringList legendLabels() const;
  QString statsText() const;
  void paintLegend(QPainter& p, const QRect& r) const;
  void paintSwatch(QPainter& p, const QRect& r, const QColor& c, bool shared, double filled) const;

  QVector<brisk::KvBlockState> blocks_;
  int blockSize_ = 0;
  int observedBlockSize_ = 1;
  int used_ = 0, shared_ = 0, owners_ = 0;
  // Layout, recomputed lazily for the current size and block count.
  mutable QSize layoutSize_;
  mutable qsizetype layoutCount_ = -1;
  mutable QRect grid_;
  mutable int cell_ = kMaxCell, pitch_ = kMaxCell + 2, cols_ = 1, perCell_ = 1;
  qint64 hoveredOwner_ = -1;
};
