// Prompt-lookup proposals for speculative decoding: no draft model, the
// sequence's own history is the draft. Text that quotes or repeats earlier
// text (code edits, summaries, retrieval answers) continues as it did before.
#pragma once
#include <cstdint>
#include <vector>

namespace brisk {

// Up to `k` tokens that followed the most recent earlier occurrence of the
// last n tokens of prompt ++ output, trying n = max_ngram down to 1; empty
// when no suffix recurs.
std::vector<int32_t> propose_ngram(const std::vector<int32_t>& prompt, const std::vector<int32_t>& output,
                                   int max_ngram, int k);

}  // namespace brisk
