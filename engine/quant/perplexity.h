// Internals of brisk/quality.h, exposed for tests: the sliding-window plan,
// a forward pass that returns logits for chosen positions of one sequence,
// and the log-probability file.
//
// Log-probability file (--save-logits / --baseline-logits), little-endian:
//   offset  type      field
//        0  char[8]   magic "BRISKLP\0"
//        8  u32       version (1)
//       12  u32       vocab_size
//       16  u64       n_positions: scored positions (records that follow)
//       24  u64       n_tokens of the text (with BOS)
//       32  u32       context (window length)
//       36  u32       stride
//       40  u64       FNV-1a 64 over the token ids (i32), context, stride, vocab_size (u32 each)
//       48  f64       sum over the scored positions of the NLL (nats)
//       56  records   one per scored position, in token order (tokens 1, 2, ...):
//                     u32 argmax of the F32 logits (ties to the lowest id), then
//                     vocab_size x F16 log-softmax (IEEE half, clamped to >= -60000)
// A record is 4 + 2 * vocab_size bytes: 32000 vocab x 2000 positions = 128 MB.
// F16 keeps a log-probability to ~3 significant digits; before a KL is taken
// both runs' rows are rounded through F16 and renormalised the same way, so a
// run compared with its own file gives exactly 0.
#pragma once
#include <cstdint>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "sample/sampler.h"  // argmax
#include "backend/backend.h"
#include "brisk/engine_config.h"
#include "model/llama_model.h"
#include "model/model_weights.h"
#include "runner/forward_batch.h"

namespace brisk {

// Tokens [begin, end) form one window, scoring tokens [first_scored, end).
struct PerplexityWindow {
  int64_t begin = 0, end = 0, first_scored = 0;
};
// Hugging Face's strided plan: windows start every `stride` tokens; each
// scores the tokens past the previous window's end (the first all but token
// 0); the last one reaches the end of the text. Requires 1 <= stride < context.
std::vector<PerplexityWindow> plan_windows(int64_t n_tokens, int context, int stride);

// One model loaded for scoring: runs a token sequence as one fresh sequence
// (positions from 0) and returns logits for a contiguous range of positions.
class SequenceScorer {
 public:
  explicit SequenceScorer(const EngineConfig& cfg);
  // Plans buffers for sequences of up to max_len tokens (call before run).
  void plan(int max_len);
  // Logits [last_row - first_row, vocab] of positions [first_row, last_row)
  // of tokens[0, n): row i predicts token i + 1.
  const std::vector<float>& run(const int32_t* tokens, int n, int first_row, int last_row);
  const ModelConfig& config() const { return model_.config; }
  const Tokenizer& tokenizer() const { return *model_.tokenizer; }
  const LoadedModel& model() const { return model_; }
  // The model's context, capped by EngineConfig::max_model_len.
  int usable_context() const;

 private:
  EngineConfig cfg_;
  LoadedModel model_;
  std::unique_ptr<Backend> backend_;
  std::unique_ptr<LlamaModel> llama_;
  ForwardBatch batch_;
  std::vector<float> logits_;
  int max_len_ = 0;
};

// Natural-log softmax of one row, in double for the sums.
void log_softmax(const float* logits, int n, std::vector<double>& out);

struct LogprobFileHeader {
  uint32_t vocab_size = 0;
  uint64_t n_positions = 0, n_tokens = 0;
  uint32_t context = 0, stride = 0;
  uint64_t hash = 0;
  double nll_sum = 0;
};
uint64_t logprob_file_hash(const std::vector<int32_t>& tokens, int context, int stride, int vocab);

class LogprobWriter {
 public:
  LogprobWriter(const std::string& path, const LogprobFileHeader& h);
  // An unfinished file (the run failed) is removed: a half-written baseline
  // would only fail later, further from the cause.
  ~LogprobWriter();
  void write(int32_t argmax, const std::vector<uint16_t>& f16_row);
  // Writes the NLL sum into the header and closes; throws naming the file.
  void finish(double nll_sum);

 private:
  std::string path_;
  std::ofstream f_;
  uint64_t written_ = 0, expected_ = 0;
  bool finished_ = false;
};

class LogprobReader {
 public:
  // Throws brisk::Error naming the file when it is not a log-probability file
  // or does not match `expect` (token sequence, vocabulary, window settings).
  LogprobReader(const std::string& path, const LogprobFileHeader& expect);
  void read(int32_t& argmax, std::vector<uint16_t>& f16_row);
  const LogprobFileHeader& header() const { return h_; }

 private:
  std::string path_;
  std::ifstream f_;
  LogprobFileHeader h_;
};

}  // namespace brisk
