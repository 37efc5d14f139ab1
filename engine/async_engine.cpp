#include "brisk/async_engine.h"

#include <algorithm>
#include <unordered_map>

namespace brisk {

struct AsyncEngine::Pending {
  uint64_t id;
  std::vector<int32_t> ids;
  std::string text;
  bool is_text;
  SamplingParams params;
  Callback cb;
};

AsyncEngine::AsyncEngine(std::unique_ptr<Engine> engine) : engine_(std::move(engine)) {
  snapshot_ = engine_->metrics();
  blocks_ = engine_->kv_blocks();
  thread_ = std::thread([this] { loop(); });
}

AsyncEngine::~AsyncEngine() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

uint64_t AsyncEngine::add_request(const std::string& prompt, const SamplingParams& params, Callback cb) {
  std::vector<NewRequest> one;
  one.push_back({prompt, params, std::move(cb)});
  return add_requests(std::move(one)).front();
}

uint64_t AsyncEngine::add_request(const std::vector<int32_t>& ids, const SamplingParams& params,
                                  Callback cb) {
  auto p = std::make_unique<Pending>(Pending{next_id_++, ids, {}, false, params, std::move(cb)});
  const uint64_t id = p->id;
  {
    std::lock_guard<std::mutex> lk(mu_);
    inbox_.push_back(std::move(p));
  }
  cv_.notify_all();
  return id;
}

std::vector<uint64_t> AsyncEngine::add_requests(std::vector<NewRequest> requests) {
  std::vector<uint64_t> ids;
  {
    std::lock_guard<std::mutex> lk(mu_);
    for (NewRequest& r : requests) {
      ids.push_back(next_id_++);
      inbox_.push_back(std::make_unique<Pending>(
          Pending{ids.back(), {}, std::move(r.prompt), true, std::move(r.params), std::move(r.on_output)}));
    }
  }
  cv_.notify_all();
  return ids;
}

void AsyncEngine::abort(uint64_t id) {
  {
    std::lock_guard<std::mutex> lk(mu_);
    aborts_.push_back(id);
  }
  cv_.notify_all();
}

MetricsSnapshot AsyncEngine::metrics() const {
  std::lock_guard<std::mutex> lk(mu_);
  return snapshot_;
}

std::vector<KvBlockState> AsyncEngine::kv_blocks() const {
  std::lock_guard<std::mutex> lk(mu_);
  return blocks_;
}

std::vector<StepMetrics> AsyncEngine::steps_since(uint64_t step) const {
  std::lock_guard<std::mutex> lk(mu_);
  std::vector<StepMetrics> out;
  for (const auto& s : steps_)
    if (s.step >= step) out.push_back(s);
  return out;
}

void AsyncEngine::wait_idle() {
  std::unique_lock<std::mutex> lk(mu_);
  idle_cv_.wait(lk, [&] { return inbox_.empty() && aborts_.empty() && !busy_; });
}

void AsyncEngine::loop() {
  std::unordered_map<uint64_t, Callback> callbacks;
  for (;;) {
    std::vector<std::unique_ptr<Pending>> inbox;
    std::vector<uint64_t> aborts;
    {
      std::unique_lock<std::mutex> lk(mu_);
      if (!engine_->has_unfinished() && inbox_.empty() && aborts_.empty()) {
        busy_ = false;
        idle_cv_.notify_all();
        cv_.wait(lk, [&] { return stop_ || !inbox_.empty() || !aborts_.empty(); });
      }
      if (stop_) {
        // Requests still in the inbox never started; their owners hear the end too.
        for (auto& p : inbox_) callbacks[p->id] = std::move(p->cb);
        inbox_.clear();
        break;
      }
      busy_ = true;
      inbox.swap(inbox_);
      aborts.swap(aborts_);
    }
    std::vector<RequestOutput> outs;
    try {
      for (auto& p : inbox) {
        callbacks[p->id] = std::move(p->cb);
        // Tokenizing a text prompt happens here, off the caller's thread.
        if (p->is_text)
          engine_->add_request(p->text, p->params, p->id);
        else
          engine_->add_request(p->ids, p->params, p->id);
      }
      for (uint64_t id : aborts) engine_->abort(id);
      outs = engine_->step();
    } catch (const std::exception& e) {
      // An engine failure must not take the application down: every request
      // in flight ends with the error, and the loop goes on.
      for (auto& [id, cb] : callbacks) {
        engine_->abort(id);
        RequestOutput o;
        o.request_id = id;
        o.finished = true;
        o.finish_reason = FinishReason::Error;
        o.error = std::string("engine error: ") + e.what();
        if (cb) cb(o);
      }
      callbacks.clear();
      try {
        while (engine_->has_unfinished()) engine_->step();  // drain the aborts
      } catch (const std::exception&) {
      }
    }
    for (const auto& o : outs) {
      auto it = callbacks.find(o.request_id);
      if (it == callbacks.end()) continue;
      if (it->second) it->second(o);
      if (o.finished) callbacks.erase(it);
    }
    // Publish the state for readers on other threads (GUI at 10-20 Hz), at
    // most every 25 ms and whenever the engine goes idle: a snapshot sorts
    // the session's latencies, too costly to redo after every step.
    const double now = engine_->now();
    if (now - last_publish_ < 0.025 && engine_->has_unfinished()) continue;
    last_publish_ = now;
    MetricsSnapshot snap = engine_->metrics();
    std::vector<KvBlockState> blocks = engine_->kv_blocks();
    {
      std::lock_guard<std::mutex> lk(mu_);
      snapshot_ = std::move(snap);
      blocks_ = std::move(blocks);
      const auto& hist = engine_->step_history();
      const uint64_t have = steps_.empty() ? 0 : steps_.back().step + 1;
      auto before = [](const StepMetrics& m, uint64_t v) { return m.step < v; };
      for (auto it = std::lower_bound(hist.begin(), hist.end(), have, before); it != hist.end(); ++it)
        steps_.push_back(*it);
      if (steps_.size() > 20000) steps_.erase(steps_.begin(), steps_.begin() + 10000);
    }
  }
  // Unfinished requests are aborted so their owners hear the end.
  for (auto& [id, cb] : callbacks) {
    RequestOutput o;
    o.request_id = id;
    o.finished = true;
    o.finish_reason = FinishReason::Abort;
    if (cb) cb(o);
  }
}

}  // namespace brisk
