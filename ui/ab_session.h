// A/B: one prompt answered by two configurations at once. Each side has its
// sampling settings and runs on the main engine or on a second engine (a
// second EngineController this session owns, loaded with another engine
// configuration or model). Tracks both token streams and finds the first
// token where they differ. No widgets.
#pragma once
#include <QObject>
#include <QString>
#include <QStringList>

#include "brisk/engine_config.h"
#include "brisk/request_output.h"
#include "brisk/sampling_params.h"
#include "generation_stats.h"
#include "metatypes.h"  // before moc sees the brisk types in signals

class EngineController;

class ABSession : public QObject {
  Q_OBJECT

 public:
  enum Side { A = 0, B = 1 };
  enum class EngineChoice { Main, Second };
  struct SideConfig {
    brisk::SamplingParams params;
    EngineChoice engine = EngineChoice::Main;
  };

  explicit ABSession(EngineController* main, QObject* parent = nullptr);
  ~ABSession() override;

  EngineController* mainController() const { return main_; }
  EngineController* secondController() const { return second_; }
  EngineController* controllerFor(EngineChoice engine) const;

  // Empty when both sides can run now; otherwise why not.
  QString whyNotRunnable(const SideConfig& a, const SideConfig& b) const;
  bool isRunning() const { return running_; }
  // Submits both requests at once. Returns false (see whyNotRunnable) when
  // a side's engine has no model or a run is in progress.
  bool run(const QString& prompt, const SideConfig& a, const SideConfig& b);
  // Aborts whatever is still running, on both sides.
  void stop();

  const QStringList& chunks(Side side) const { return sides_[side].chunks; }
  QString text(Side side) const { return sides_[side].chunks.join(QString()); }
  bool isFinished(Side side) const { return sides_[side].finished; }
  const GenerationStats& stats(Side side) const { return sides_[side].stats; }
  quint64 requestId(Side side) const { return sides_[side].id; }
  // Index of the first token chunk where the streams differ, -1 while they agree.
  int divergence() const { return divergence_; }

  // First index below min(a.size(), b.size()) where a and b differ; -1 if none.
  static int firstDifference(const QStringList& a, const QStringList& b, int from = 0);

  // Loads (or replaces) the second engine's model and configuration.
  void loadSecondEngine(const brisk::EngineConfig& config);

 Q_SIGNALS:
  void started();
  void tokenReceived(int side, int index, const QString& text);
  void sideFinished(int side, const GenerationStats& stats);
  void divergenceFound(int index);
  void finished();

 private:
  struct SideState {
    EngineController* controller = nullptr;
    quint64 id = 0;
    QStringList chunks;
    bool finished = true;
    GenerationStats stats;
  };

  void onToken(EngineController* c, quint64 id, const QString& text);
  void onFinished(EngineController* c, quint64 id, const GenerationStats& stats);
  void watch(EngineController* c);

  EngineController* main_;
  EngineController* second_;
  SideState sides_[2];
  bool running_ = false;
  int divergence_ = -1;
  int compared_ = 0;  // chunks [0, compared_) agree on both sides
};
