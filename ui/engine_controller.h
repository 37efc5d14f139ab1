// The only bridge between the engine and Qt. Loads models on a worker
// thread, owns the AsyncEngine, turns its engine-thread callbacks into
// GUI-thread signals and polls its metrics at 10 Hz (adjustable): the
// snapshot, the engine steps since the last poll and the KV block map.
#pragma once
#include <QHash>
#include <QObject>
#include <QSet>
#include <QString>
#include <QTimer>
#include <QVector>
#include <atomic>
#include <chrono>
#include <memory>

#include "brisk/async_engine.h"
#include "brisk/engine_config.h"
#include "brisk/metrics.h"
#include "brisk/model_info.h"
#include "brisk/sampling_params.h"
#include "generation_stats.h"
#include "metatypes.h"

class QThread;

class EngineController : public QObject {
  Q_OBJECT

 public:
  static constexpr int kTokenAlternatives = 5;
  explicit EngineController(QObject* parent = nullptr);
  ~EngineController() override;  // waits for a load in flight; aborts requests

  bool hasModel() const { return engine_ != nullptr; }
  bool isLoading() const { return loading_ != nullptr; }
  // Worker threads still running Engine::create, cancelled loads included.
  int loadsInFlight() const { return int(threads_.size()); }
  int activeRequests() const { return int(active_.size()); }
  // Valid while hasModel().
  const brisk::ModelInfo& modelInfo() const;
  const brisk::EngineConfig& engineConfig() const;
  int metricsIntervalMs() const;
  int64_t kvBlocksTotal() const { return kvBlocksTotal_; }  // of the loaded model's cache
  // The engine's metrics clock (seconds since the loaded engine started, the
  // clock of StepMetrics::start), read now; -1 without a model.
  double engineNow() const;
  // The block map of the last poll (empty without a model); owners are
  // request ids as generate() returned them.
  const QVector<brisk::KvBlockState>& kvBlocks() const { return kvBlocks_; }

 public Q_SLOTS:
  // Starts loading on a worker thread; a load in flight is cancelled. The
  // loaded model stays usable until the new one replaces it.
  void loadModel(const brisk::EngineConfig& config);
  // Discards the load in flight when it arrives (Engine::create cannot be
  // interrupted); emits loadCancelled.
  void cancelLoad();
  // Returns the request id (unique across models), 0 without a model.
  quint64 generate(const QString& prompt, const brisk::SamplingParams& params);
  // One request per params, all joining the same engine step (so an A/B
  // run's sides start together even when the engine could finish one side
  // before the GUI thread got to submit the other). Ids in order; empty
  // without a model.
  QList<quint64> generateTogether(const QString& prompt, const QList<brisk::SamplingParams>& params);
  void stop(quint64 requestId);
  // Sets how often the engine is polled (metricsUpdated, stepsAppended,
  // kvBlocksUpdated); clamped to 10..10000 ms. Default 100 ms (10 Hz).
  void setMetricsIntervalMs(int ms);

 Q_SIGNALS:
  void loadStarted(const QString& model);
  void modelLoaded(const brisk::ModelInfo& info);
  void loadFailed(const QString& error);  // the engine's brisk::Error message, verbatim
  void loadCancelled();
  void tokenReceived(quint64 requestId, const QString& newText);
  // The same chunk with its token's probability under the model (-1 when
  // the engine reported none), for views that colour tokens by it.
  void tokenProbabilityReceived(quint64 requestId, const QString& newText, double probability);
  // The same chunk with the model's most likely tokens at that position
  // (kTokenAlternatives of them, most likely first), for the token view's hover.
  void tokenAlternativesReceived(quint64 requestId, const QString& newText, double probability,
                                 const TokenAlternatives& alternatives);
  void requestFinished(quint64 requestId, brisk::FinishReason reason, const GenerationStats& stats);
  // Each poll emits, in this order: stepsAppended (only when steps ran since
  // the last poll: each step once, in order; a new model starts again at
  // step 0), kvBlocksUpdated (only when the block map changed, and once
  // after a model loads), metricsUpdated (every poll).
  void stepsAppended(const QVector<brisk::StepMetrics>& steps);
  // One entry per KV block; owner is the request id generate() returned
  // (-1: free).
  void kvBlocksUpdated(const QVector<brisk::KvBlockState>& blocks);
  void metricsUpdated(const brisk::MetricsSnapshot& snapshot);

 private:
  using Clock = std::chrono::steady_clock;
  struct LoadJob;
  struct Delivery;  // one RequestOutput, trimmed, with its arrival time
  struct Active {
    quint64 engineId = 0;
    quint64 engineGeneration = 0;
    Clock::time_point submitted, firstToken, lastToken;
    bool gotFirst = false;
    int outputTokens = 0, promptTokens = 0;
  };

  void onLoadFinished(const std::shared_ptr<LoadJob>& job);
  void onOutput(const Delivery& d);
  void finishRequest(quint64 id, Active& a, brisk::FinishReason reason, const QString& error,
                     Clock::time_point when, const brisk::RequestTimings* timings = nullptr);
  void abortAllActive(const QString& why);
  void pollMetrics();

  std::unique_ptr<brisk::AsyncEngine> engine_;
  quint64 engineGeneration_ = 0;
  int64_t kvBlocksTotal_ = 0;
  std::shared_ptr<LoadJob> loading_;
  QSet<QThread*> threads_;
  QHash<quint64, Active> active_;
  quint64 nextId_ = 1;
  QTimer metricsTimer_;
  // Telemetry polling state, per loaded engine.
  Clock::time_point engineEpoch_;          // steady_clock time of the engine clock's 0
  uint64_t nextStep_ = 0;                  // first step not yet emitted
  QVector<brisk::KvBlockState> kvBlocks_;  // last emitted block map
  QHash<quint64, quint64> idByEngineId_;   // current engine's request ids -> ours
  QSet<quint64> retiredEngineIds_;         // finished; dropped from idByEngineId_ once freed
};
