#include "ab_session.h"

#include "engine_controller.h"

ABSession::ABSession(EngineController* main, QObject* parent)
    : QObject(parent), main_(main), second_(new EngineController(this)) {
  second_->setObjectName(QStringLiteral("secondEngine"));
  watch(main_);
  watch(second_);
}

ABSession::~ABSession() = default;

void ABSession::watch(EngineController* c) {
  connect(c, &EngineController::tokenReceived, this,
          [this, c](quint64 id, const QString& text) { onToken(c, id, text); });
  connect(c, &EngineController::requestFinished, this,
          [this, c](quint64 id, brisk::FinishReason, const GenerationStats& s) { onFinished(c, id, s); });
}

EngineController* ABSession::controllerFor(EngineChoice engine) const {
  return engine == EngineChoice::Second ? second_ : main_;
}

QString ABSession::whyNotRunnable(const SideConfig& a, const SideConfig& b) const {
  if (running_) return tr("An A/B run is in progress");
  const SideConfig* cfg[2] = {&a, &b};
  for (int s = 0; s < 2; ++s) {
    const EngineController* c = controllerFor(cfg[s]->engine);
    if (c->hasModel()) continue;
    const QString side = s == A ? QStringLiteral("A") : QStringLiteral("B");
    if (cfg[s]->engine == EngineChoice::Second)
      return c->isLoading() ? tr("Side %1's second engine is still loading").arg(side)
                            : tr("Side %1 runs on the second engine: load it first").arg(side);
    return tr("Load a model first");
  }
  return {};
}

bool ABSession::run(const QString& prompt, const SideConfig& a, const SideConfig& b) {
  if (!whyNotRunnable(a, b).isEmpty()) return false;
  const SideConfig* cfg[2] = {&a, &b};
  for (int s = 0; s < 2; ++s) {
    sides_[s] = SideState{};
    sides_[s].controller = controllerFor(cfg[s]->engine);
    sides_[s].finished = false;
  }
  divergence_ = -1;
  compared_ = 0;
  running_ = true;
  Q_EMIT started();
  // Both requests join the same step when they share an engine, so they
  // stream at once (submitted one after the other, the engine could finish
  // side A before side B arrived: the GUI thread competes with the engine's
  // spinning workers for the cores). Two engines each take their own.
  if (sides_[0].controller == sides_[1].controller) {
    const QList<quint64> ids = sides_[0].controller->generateTogether(prompt, {a.params, b.params});
    for (int s = 0; s < 2; ++s) sides_[s].id = ids.size() == 2 ? ids[s] : 0;
  } else {
    for (int s = 0; s < 2; ++s) sides_[s].id = sides_[s].controller->generate(prompt, cfg[s]->params);
  }
  return true;
}

void ABSession::stop() {
  for (SideState& s : sides_)
    if (!s.finished && s.controller && s.id) s.controller->stop(s.id);
}

int ABSession::firstDifference(const QStringList& a, const QStringList& b, int from) {
  const int n = int(std::min(a.size(), b.size()));
  for (int i = std::max(0, from); i < n; ++i)
    if (a[i] != b[i]) return i;
  return -1;
}

void ABSession::onToken(EngineController* c, quint64 id, const QString& text) {
  for (int s = 0; s < 2; ++s) {
    SideState& side = sides_[s];
    if (side.finished || side.controller != c || side.id != id) continue;
    side.chunks.append(text);
    Q_EMIT tokenReceived(s, int(side.chunks.size()) - 1, text);
    if (divergence_ < 0) {
      const QStringList& x = sides_[A].chunks;
      const QStringList& y = sides_[B].chunks;
      const int d = firstDifference(x, y, compared_);
      if (d >= 0) {
        divergence_ = d;
        Q_EMIT divergenceFound(d);
      } else {
        compared_ = int(std::min(x.size(), y.size()));
      }
    }
  }
}

void ABSession::onFinished(EngineController* c, quint64 id, const GenerationStats& stats) {
  for (int s = 0; s < 2; ++s) {
    SideState& side = sides_[s];
    if (side.finished || side.controller != c || side.id != id) continue;
    side.finished = true;
    side.stats = stats;
    Q_EMIT sideFinished(s, stats);
  }
  if (running_ && sides_[A].finished && sides_[B].finished) {
    running_ = false;
    Q_EMIT finished();
  }
}

void ABSession::loadSecondEngine(const brisk::EngineConfig& config) { second_->loadModel(config); }
