#include "engine_controller.h"

#include <QThread>
#include <algorithm>
#include <cmath>
#include <exception>

#include "brisk/engine.h"
#include "brisk/error.h"
#include "brisk/model_tools.h"
#include "format.h"

struct EngineController::LoadJob {
  brisk::EngineConfig config;
  std::atomic<bool> cancelled{false};
  // Written by the worker, read on the GUI thread after the worker posts.
  std::unique_ptr<brisk::Engine> engine;
  QString error;
};

struct EngineController::Delivery {
  quint64 id = 0;
  Clock::time_point when;
  QString newText;
  int newTokens = 0, totalTokens = 0, promptTokens = 0;
  bool finished = false;
  brisk::FinishReason reason = brisk::FinishReason::None;
  QString error;
  brisk::RequestTimings timings;   // engine/metrics' record, on the final output
  double probability = -1;         // of the new token, from the engine's log-probability
  TokenAlternatives alternatives;  // the model's most likely tokens at that position
};

namespace {
double msBetween(std::chrono::steady_clock::time_point a, std::chrono::steady_clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}
}  // namespace

EngineController::EngineController(QObject* parent) : QObject(parent) {
  registerBriskMetaTypes();
  metricsTimer_.setInterval(100);  // 10 Hz
  connect(&metricsTimer_, &QTimer::timeout, this, &EngineController::pollMetrics);
}

EngineController::~EngineController() {
  metricsTimer_.stop();
  if (loading_) loading_->cancelled = true;
  for (QThread* t : std::as_const(threads_)) {
    t->wait();
    delete t;
  }
  threads_.clear();
  // Joins the engine thread; outputs it posts meanwhile die with this object.
  engine_.reset();
}

const brisk::ModelInfo& EngineController::modelInfo() const { return engine_->model_info(); }
const brisk::EngineConfig& EngineController::engineConfig() const { return engine_->config(); }
int EngineController::metricsIntervalMs() const { return metricsTimer_.interval(); }

void EngineController::setMetricsIntervalMs(int ms) {
  metricsTimer_.setInterval(std::clamp(ms, 10, 10000));  // restarts a running timer
}

double EngineController::engineNow() const {
  if (!engine_) return -1;
  return std::chrono::duration<double>(Clock::now() - engineEpoch_).count();
}

void EngineController::loadModel(const brisk::EngineConfig& config) {
  if (loading_) loading_->cancelled = true;
  auto job = std::make_shared<LoadJob>();
  job->config = config;
  loading_ = job;

  QThread* thread = QThread::create([this, job] {
    try {
      job->engine = brisk::Engine::create(job->config);
    } catch (const std::exception& e) {
      job->error = QString::fromUtf8(e.what());
    } catch (...) {
      job->error =
          QStringLiteral("%1: unknown error while loading").arg(QString::fromStdString(job->config.model));
    }
    if (job->cancelled) {
      job->engine.reset();  // free a discarded model here, off the GUI thread
      return;
    }
    QMetaObject::invokeMethod(
        this, [this, job] { onLoadFinished(job); }, Qt::QueuedConnection);
  });
  thread->setObjectName(QStringLiteral("brisk-load"));
  threads_.insert(thread);
  connect(thread, &QThread::finished, this, [this, thread] {
    if (threads_.remove(thread)) {
      thread->wait();
      thread->deleteLater();
    }
  });
  thread->start();
  Q_EMIT loadStarted(QString::fromStdString(config.model));
}

void EngineController::cancelLoad() {
  if (!loading_) return;
  loading_->cancelled = true;
  loading_.reset();
  Q_EMIT loadCancelled();
}

void EngineController::onLoadFinished(const std::shared_ptr<LoadJob>& job) {
  if (job != loading_ || job->cancelled) return;  // superseded or cancelled
  loading_.reset();
  if (!job->engine) {
    Q_EMIT loadFailed(job->error);
    return;
  }
  // The previous engine goes first: its unfinished requests end as aborted.
  metricsTimer_.stop();
  if (engine_) {
    engine_.reset();
    abortAllActive(QStringLiteral("the model was replaced"));
  }
  const Clock::time_point beforeStart = Clock::now();
  engine_ = std::make_unique<brisk::AsyncEngine>(std::move(job->engine));
  kvBlocksTotal_ = static_cast<int64_t>(engine_->kv_blocks().size());
  ++engineGeneration_;
  // The first snapshot is taken when the AsyncEngine starts, before any
  // step: it pins the engine clock to steady_clock (never behind it, so a
  // step's end is never later than engineNow()).
  engineEpoch_ = beforeStart - std::chrono::duration_cast<Clock::duration>(
                                   std::chrono::duration<double>(engine_->metrics().now));
  nextStep_ = 0;
  kvBlocks_.clear();
  idByEngineId_.clear();
  retiredEngineIds_.clear();
  Q_EMIT modelLoaded(engine_->model_info());
  pollMetrics();
  metricsTimer_.start();
}

namespace {
// The window colours tokens by probability and lists the likeliest
// alternatives on hover: always ask for a few (one log-sum-exp and a
// partial sort of the vocabulary per token, negligible next to the forward).
brisk::SamplingParams withLogprobs(brisk::SamplingParams p) {
  p.logprobs = std::max(p.logprobs, EngineController::kTokenAlternatives);
  return p;
}
}  // namespace

quint64 EngineController::generate(const QString& prompt, const brisk::SamplingParams& params) {
  const QList<quint64> ids = generateTogether(prompt, {params});
  return ids.isEmpty() ? 0 : ids.front();
}

QList<quint64> EngineController::generateTogether(const QString& prompt,
                                                  const QList<brisk::SamplingParams>& params) {
  if (!engine_ || params.isEmpty()) return {};
  QList<quint64> ids;
  std::vector<brisk::AsyncEngine::NewRequest> requests;
  // The callbacks run on this engine's own thread, which ends before the
  // engine is destroyed: decode through it, not through engine_ (a model
  // swap may have replaced that by then).
  brisk::AsyncEngine* eng = engine_.get();
  for (const brisk::SamplingParams& p : params) {
    const quint64 id = nextId_++;
    Active a;
    a.engineGeneration = engineGeneration_;
    a.submitted = Clock::now();
    active_.insert(id, a);
    ids.push_back(id);
    // Runs on the engine thread: trim the output to what the GUI needs and post it.
    auto callback = [this, id, eng](const brisk::RequestOutput& out) {
      Delivery d;
      d.id = id;
      d.when = Clock::now();
      d.newText = QString::fromStdString(out.new_text);
      d.newTokens = static_cast<int>(out.new_token_ids.size());
      d.totalTokens = static_cast<int>(out.token_ids.size());
      d.promptTokens = out.prompt_tokens;
      d.finished = out.finished;
      d.reason = out.finish_reason;
      d.error = QString::fromStdString(out.error);
      d.timings = out.timings;
      if (!out.new_logprobs.empty()) {
        const brisk::TokenLogprob& lp = out.new_logprobs.back();
        d.probability = std::exp(double(lp.logprob));
        // Decoded here, on the engine thread, so the GUI thread only draws.
        for (const auto& [tok, alt] : lp.top) {
          if (d.alternatives.size() == kTokenAlternatives) break;
          d.alternatives.push_back({tok, QString::fromStdString(eng->decode({tok})), std::exp(double(alt))});
        }
      }
      QMetaObject::invokeMethod(
          this, [this, d] { onOutput(d); }, Qt::QueuedConnection);
    };
    requests.push_back({prompt.toStdString(), withLogprobs(p), std::move(callback)});
  }
  try {
    const std::vector<uint64_t> engineIds = engine_->add_requests(std::move(requests));
    for (int i = 0; i < ids.size(); ++i) {
      active_[ids[i]].engineId = engineIds[i];
      idByEngineId_.insert(engineIds[i], ids[i]);
    }
  } catch (const std::exception& e) {
    const QString error = QString::fromUtf8(e.what());
    for (quint64 id : ids)
      QMetaObject::invokeMethod(
          this,
          [this, id, error] {
            auto it = active_.find(id);
            if (it != active_.end()) finishRequest(id, *it, brisk::FinishReason::Error, error, Clock::now());
          },
          Qt::QueuedConnection);
  }
  return ids;
}

void EngineController::stop(quint64 requestId) {
  auto it = active_.find(requestId);
  if (it == active_.end() || !engine_ || it->engineGeneration != engineGeneration_) return;
  engine_->abort(it->engineId);
}

void EngineController::onOutput(const Delivery& d) {
  auto it = active_.find(d.id);
  if (it == active_.end()) return;  // already finished (aborted by a model swap)
  Active& a = *it;
  a.promptTokens = d.promptTokens;
  a.outputTokens = std::max(a.outputTokens, d.totalTokens);
  if (d.newTokens > 0) {
    if (!a.gotFirst) {
      a.gotFirst = true;
      a.firstToken = d.when;
    }
    a.lastToken = d.when;
  }
  if (!d.newText.isEmpty()) {
    Q_EMIT tokenReceived(d.id, d.newText);
    Q_EMIT tokenProbabilityReceived(d.id, d.newText, d.probability);
    Q_EMIT tokenAlternativesReceived(d.id, d.newText, d.probability, d.alternatives);
  }
  if (d.finished) finishRequest(d.id, a, d.reason, d.error, d.when, &d.timings);
}

void EngineController::finishRequest(quint64 id, Active& a, brisk::FinishReason reason, const QString& error,
                                     Clock::time_point when, const brisk::RequestTimings* timings) {
  GenerationStats s;
  s.promptTokens = a.promptTokens;
  s.outputTokens = a.outputTokens;
  s.finishReason = reason;
  s.error = error;
  s.e2eMs = msBetween(a.submitted, when);
  if (a.gotFirst) s.ttftMs = msBetween(a.submitted, a.firstToken);
  if (a.gotFirst && a.outputTokens >= 2) {
    const double decodeMs = msBetween(a.firstToken, a.lastToken);
    if (decodeMs > 0) s.tokensPerSecond = (a.outputTokens - 1) * 1000.0 / decodeMs;
  }
  // The engine's own record wins: every number shown comes from engine/metrics.
  // The local clock above only serves requests ended here (model swaps).
  if (timings && timings->finished >= 0) {
    s.e2eMs = timings->e2e() * 1e3;
    s.ttftMs = timings->first_token >= 0 ? timings->ttft() * 1e3 : -1;
    s.tokensPerSecond = timings->decode_tokens_per_s(a.outputTokens);
  }
  // Its blocks may still show in the next poll; the mapping goes once they are free.
  if (a.engineGeneration == engineGeneration_ && idByEngineId_.contains(a.engineId))
    retiredEngineIds_.insert(a.engineId);
  active_.remove(id);
  Q_EMIT requestFinished(id, reason, s);
}

void EngineController::abortAllActive(const QString& why) {
  const auto ids = active_.keys();
  const auto now = Clock::now();
  for (quint64 id : ids) {
    auto it = active_.find(id);
    if (it != active_.end()) finishRequest(id, *it, brisk::FinishReason::Abort, why, now);
  }
}

void EngineController::pollMetrics() {
  if (!engine_) return;
  // Only the steps not seen yet are copied.
  const std::vector<brisk::StepMetrics> steps = engine_->steps_since(nextStep_);
  if (!steps.empty()) {
    nextStep_ = steps.back().step + 1;
    Q_EMIT stepsAppended(QVector<brisk::StepMetrics>(steps.begin(), steps.end()));
  }

  const std::vector<brisk::KvBlockState> raw = engine_->kv_blocks();
  QVector<brisk::KvBlockState> blocks(raw.begin(), raw.end());
  QSet<quint64> owners;  // only needed to retire finished requests' ids
  for (brisk::KvBlockState& b : blocks) {
    if (b.owner < 0) continue;
    if (!retiredEngineIds_.isEmpty()) owners.insert(quint64(b.owner));
    const auto it = idByEngineId_.constFind(quint64(b.owner));
    if (it != idByEngineId_.constEnd()) b.owner = qint64(*it);
  }
  for (auto it = retiredEngineIds_.begin(); it != retiredEngineIds_.end();) {
    if (owners.contains(*it)) {
      ++it;
    } else {
      idByEngineId_.remove(*it);
      it = retiredEngineIds_.erase(it);
    }
  }
  const auto same = [](const brisk::KvBlockState& x, const brisk::KvBlockState& y) {
    return x.owner == y.owner && x.refcount == y.refcount && x.filled == y.filled;
  };
  if (blocks.size() != kvBlocks_.size() || kvBlocks_.isEmpty() ||
      !std::equal(blocks.cbegin(), blocks.cend(), kvBlocks_.cbegin(), same)) {
    kvBlocks_ = std::move(blocks);
    Q_EMIT kvBlocksUpdated(kvBlocks_);
  }

  brisk::MetricsSnapshot m = engine_->metrics();
  // The snapshot's gauges come from the last step; before the first one the
  // cache size is known from the block map, so show it rather than 0/0.
  if (m.kv_blocks_total == 0) m.kv_blocks_total = kvBlocksTotal_;
  Q_EMIT metricsUpdated(m);
}
