#include "bench_runner.h"

#include <QThread>
#include <atomic>
#include <chrono>
#include <exception>
#include <mutex>

struct BenchRunner::Job {
  brisk::MatrixSpec matrix;
  brisk::WorkloadSpec workload;
  std::atomic<bool> stop{false};
  // Worker-thread state of the throttle.
  std::chrono::steady_clock::time_point lastPost{};
  brisk::MatrixProgress pending;
  bool hasPending = false;
  int lastRun = -1;
  std::string lastPhase;
  // Written by the worker before it posts onDone.
  std::vector<brisk::BenchResult> results;
  QString error;
};

BenchRunner::BenchRunner(QObject* parent) : QObject(parent) { registerBriskMetaTypes(); }

BenchRunner::~BenchRunner() {
  if (!thread_) return;
  if (job_) job_->stop = true;
  thread_->wait();
  delete thread_;
}

bool BenchRunner::start(const brisk::MatrixSpec& matrix, const brisk::WorkloadSpec& workload) {
  if (job_) {
    Q_EMIT failed(tr("A benchmark is already running"));
    return false;
  }
  int runs = 0;
  try {
    runs = int(brisk::expand_matrix(matrix, workload).size());
  } catch (const std::exception& e) {
    error_ = QString::fromUtf8(e.what());
    Q_EMIT failed(error_);
    return false;
  }
  if (thread_) {  // the previous matrix's thread has ended: onDone ran
    thread_->wait();
    delete thread_;
    thread_ = nullptr;
  }
  auto job = std::make_shared<Job>();
  job->matrix = matrix;
  job->workload = workload;
  job_ = job;
  results_.clear();
  stopped_ = false;
  error_.clear();

  thread_ = QThread::create([this, job] {
    using Clock = std::chrono::steady_clock;
    auto post = [this, job] {
      brisk::MatrixProgress p = std::move(job->pending);
      job->pending = {};
      job->hasPending = false;
      job->lastPost = Clock::now();
      QMetaObject::invokeMethod(
          this, [this, p] { Q_EMIT progress(p); }, Qt::QueuedConnection);
    };
    brisk::MatrixCallbacks cb;
    cb.stop = &job->stop;
    cb.progress = [job, post](const brisk::MatrixProgress& p) {
      // Keep every step: a skipped report's steps ride along with the next.
      const bool changed = p.run != job->lastRun || p.phase != job->lastPhase;
      if (job->hasPending && p.run != job->pending.run) post();  // its last steps belong to its own plots
      std::vector<brisk::StepMetrics> steps = std::move(job->pending.new_steps);
      job->lastRun = p.run;
      job->lastPhase = p.phase;
      job->pending = p;
      steps.insert(steps.end(), p.new_steps.begin(), p.new_steps.end());
      job->pending.new_steps = std::move(steps);
      job->hasPending = true;
      if (changed || Clock::now() - job->lastPost >= std::chrono::milliseconds(kProgressIntervalMs)) post();
    };
    cb.on_result = [this, job, post](const brisk::BenchResult& r) {
      if (job->hasPending) post();  // the run's progress comes before its result
      QMetaObject::invokeMethod(
          this, [this, r] { Q_EMIT resultReady(r); }, Qt::QueuedConnection);
    };
    try {
      // run_matrix reads and checks every run's datasets, traces and quality
      // files before the first run (a bad line fails the matrix at once), here
      // on the worker: a large dataset must not freeze the window.
      job->results = brisk::run_matrix(job->matrix, job->workload, cb);
    } catch (const std::exception& e) {
      job->error = QString::fromUtf8(e.what());
    } catch (...) {
      job->error = QStringLiteral("the benchmark failed with an unknown error");
    }
    if (job->hasPending) post();
    QMetaObject::invokeMethod(
        this, [this, job] { onDone(job); }, Qt::QueuedConnection);
  });
  thread_->setObjectName(QStringLiteral("brisk-bench"));
  thread_->start();
  Q_EMIT started(runs);
  return true;
}

void BenchRunner::stop() {
  if (job_) job_->stop = true;
}

void BenchRunner::onDone(const std::shared_ptr<Job>& job) {
  if (job != job_) return;
  job_.reset();
  results_ = std::move(job->results);
  stopped_ = job->stop;
  error_ = job->error;
  if (!error_.isEmpty()) Q_EMIT failed(error_);
  Q_EMIT finished();
}
