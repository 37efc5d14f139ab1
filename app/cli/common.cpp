#include "cli/common.h"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "brisk/error.h"
#include "brisk/sysinfo.h"

namespace brisk::cli {

void add_engine_flags(Args& a) {
  a.flag("--tokenizer", "FILE", "tokenizer .model or llama2.c tokenizer .bin (overrides the model's)");
  a.flag("--backend", "auto|cpu|cuda",
         "what runs the model: auto = CUDA when a device is available, else the CPU (brisk-cli sysinfo lists "
         "both and why one is unavailable)",
         "auto");
  a.flag(
      "--gpu-memory-utilization", "F",
      "CUDA: without --kv-blocks/--kv-bytes, the KV cache takes this fraction of the device memory left free "
      "after weights and workspace",
      "0.9");
  a.flag("--no-cuda-graphs", "",
         "CUDA: launch every decode step's kernels instead of replaying a captured graph");
  a.flag("--no-huge-pages", "",
         "CPU: read weights from the file mapping instead of copying them into transparent huge pages");
  a.flag("--int8-fma", "",
         "CPU, INT8 and Q8_0 weights: widen them to F32 and multiply with FMAs instead of rounding the "
         "activations to 24-bit integers for VNNI dot products (INT8, W8A24) or to 16-bit integers for "
         "vpmaddwd (Q8_0, W8A16), the defaults on AVX-512 CPUs");
  a.flag("--fp8-fma", "",
         "CPU, FP8 weights: widen them to F32 and multiply with FMAs instead of BF16 dot products (each "
         "activation as two BF16, the default on AVX-512 BF16 + VBMI CPUs)");
  a.flag("--no-fused-decode", "",
         "CUDA: run decode steps' norms, residual adds and SwiGLU as their own kernels, not folded into the "
         "GEMVs");
  a.flag(
      "--no-dependent-launch", "",
      "CUDA: launch each decode kernel only once the one before it has finished (no programmatic dependent "
      "launch)");
  a.flag("--fused-rope", "",
         "CUDA: run decode steps' RoPE and KV cache write in the q/k/v projection's epilogue instead of a "
         "kernel of their own (an A/B knob: no faster on an H100)");
  a.flag("--split-merge-in-kernel", "",
         "CUDA: decode attention split over a long context merges its partitions in the attention kernel "
         "instead of a reduce kernel launched after it (an A/B knob: no faster on an H100)");
  a.flag("--l2-prefetch", "",
         "CUDA, with fused decode: after each layer's q/k/v projection, prefetch the weights read next (wo, "
         "then the first rows of gate and up, up to half the L2 cache) into L2 while RoPE and attention run "
         "(a hint, the same arithmetic; off until measured on a GPU)");
  a.flag("--persistent-decode", "",
         "CUDA, with fused decode: a decode step of one sequence (F16 or BF16 weights, F32/F16/BF16 KV "
         "cache) runs all of its layers in one persistent kernel launch, the phases of a layer separated by "
         "grid-wide barriers instead of kernel boundaries, each block prefetching its next phase's weights "
         "into L2 before it waits (the same arithmetic up to summation order; off until measured on a GPU)");
  a.flag("--no-fp8-fast-accum", "",
         "CUDA, FP8 weights: GEMMs promote their partial sums to F32 every few steps instead of accumulating "
         "in the tensor cores' own precision over the whole K (slower, slightly more exact)");
  a.flag("--threads", "N", "CPU threads, 0 = physical cores", "0");
  a.flag("--block-size", "N", "KV cache block size in tokens", "16");
  a.flag("--kv-blocks", "N", "KV cache size in blocks (0 = from --kv-bytes or automatic)", "0");
  a.flag("--kv-bytes", "BYTES", "KV cache size in bytes (0 = automatic)", "0");
  a.flag("--max-num-seqs", "N", "most sequences in one step", "32");
  a.flag("--max-num-batched-tokens", "N", "most tokens in one step", "2048");
  a.flag("--max-model-len", "N", "cap on prompt + output tokens (0 = model context)", "0");
  a.flag("--no-chunked-prefill", "", "prefill each prompt in one step");
  a.flag("--no-prefix-cache", "",
         "recompute every prompt instead of reusing cached KV blocks of equal prefixes");
  a.flag("--policy", "continuous|static", "scheduling policy", "continuous");
  a.flag("--speculate", "ngram[:K]",
         "speculative decoding by prompt lookup for greedy requests: propose K tokens (default 4) per step",
         "");
  a.flag("--engine-seed", "N", "seed for requests that set none", "0");
  a.flag("--dtype", "auto|f32|f16|bf16|q8_0|int8|fp8-e4m3|fp8-e5m2",
         "weight precision: auto runs the weights as stored, others convert at load", "auto");
  a.flag("--kv-dtype", "f32|f16|bf16|fp8-e4m3|int8", "KV cache precision", "f32");
  a.flag("--quantize-embeddings", "", "with --dtype: convert the embedding table and classifier too");
  a.flag("--fp8-per-tensor", "", "with an fp8 --dtype: one scale per tensor instead of per output channel");
  a.flag("--w8a8", "", "with --dtype int8: quantize activations per token and use integer dot products");
}

void throw_usage_naming_flag(const std::string& e, const std::string& type,
                             std::initializer_list<std::pair<const char*, const char*>> fields) {
  for (const auto& [field, flag] : fields)
    if (e.rfind(type + "." + field + " ", 0) == 0) throw UsageError("flag " + std::string(flag) + ": " + e);
  throw UsageError(e);
}

void refuse_conversion_flags_without_effect(const EngineConfig& c) {
  if (c.quantize_embeddings && c.weight_dtype == "auto")
    throw UsageError("flag --quantize-embeddings: needs --dtype (the precision to convert them to)");
  if (c.fp8_per_tensor_scale && c.weight_dtype.rfind("fp8-", 0) != 0)
    throw UsageError("flag --fp8-per-tensor: needs --dtype fp8-e4m3 or fp8-e5m2 (it is '" + c.weight_dtype +
                     "')");
}

void refuse_cuda_flags_on_cpu(const Args& a, EngineConfig& c) {
  static const char* const kCudaOnlyFlags[] = {
      "--gpu-memory-utilization", "--no-cuda-graphs", "--no-fused-decode",
      "--no-dependent-launch",    "--fused-rope",     "--no-fp8-fast-accum",
      "--split-merge-in-kernel",  "--l2-prefetch",    "--persistent-decode"};
  std::vector<std::string> given;
  for (const char* f : kCudaOnlyFlags)
    if (a.has(f)) given.push_back(f);
  if (given.empty() || resolve_backend(c.backend) != "cpu") return;
  if (c.backend == "cpu")
    throw UsageError("flag " + given[0] + ": applies to the CUDA backend only (--backend is cpu)");
  // "auto" without a CUDA device: the same command line runs on a GPU machine, so say it and go on.
  std::string flags, reason;
  for (const std::string& f : given) flags += (flags.empty() ? "" : ", ") + f;
  for (const BackendStatus& b : list_backends())
    if (b.name == "cuda" && !b.reason.empty()) reason = " (CUDA: " + b.reason + ")";
  std::fprintf(
      stderr, "warning: %s ignored: %s to the CUDA backend only, and --backend auto runs on the CPU here%s\n",
      flags.c_str(), given.size() == 1 ? "it applies" : "they apply", reason.c_str());
  reset_cuda_only_fields(c);  // what is recorded (a bench's config) is what ran
}

EngineConfig engine_config_from(const Args& a, const std::string& model) {
  EngineConfig c;
  c.model = model;
  c.tokenizer = a.str("--tokenizer");
  c.backend = a.str("--backend");
  c.gpu_memory_utilization = a.number("--gpu-memory-utilization", 1e-6, 1);
  c.cuda_graphs = !a.has("--no-cuda-graphs");
  c.fused_decode = !a.has("--no-fused-decode");
  c.dependent_launch = !a.has("--no-dependent-launch");
  c.fused_rope = a.has("--fused-rope");
  c.fp8_fast_accum = !a.has("--no-fp8-fast-accum");
  c.split_merge_in_kernel = a.has("--split-merge-in-kernel");
  c.l2_prefetch = a.has("--l2-prefetch");
  c.persistent_decode = a.has("--persistent-decode");
  c.huge_page_weights = !a.has("--no-huge-pages");
  c.int8_fma = a.has("--int8-fma");
  c.fp8_fma = a.has("--fp8-fma");
  c.threads = (int)a.integer("--threads", 0, 1024);
  c.block_size = (int)a.integer("--block-size", 1, 1024);
  c.num_kv_blocks = a.integer("--kv-blocks", 0, 1LL << 40);
  c.kv_cache_bytes = a.integer("--kv-bytes", 0, 1LL << 50);
  c.max_num_seqs = (int)a.integer("--max-num-seqs", 1, 4096);
  c.max_num_batched_tokens = (int)a.integer("--max-num-batched-tokens", 1, 1 << 20);
  c.max_model_len = (int)a.integer("--max-model-len", 0, 1 << 24);
  c.enable_chunked_prefill = !a.has("--no-chunked-prefill");
  c.enable_prefix_caching = !a.has("--no-prefix-cache");
  const std::string p = a.str("--policy");
  if (p == "continuous")
    c.policy = SchedulerPolicy::Continuous;
  else if (p == "static")
    c.policy = SchedulerPolicy::Static;
  else
    throw UsageError("flag --policy: '" + p + "' is not continuous or static");
  c.seed = (uint64_t)a.integer("--engine-seed", 0, INT64_MAX);
  if (const std::string sp = a.str("--speculate"); !sp.empty()) {
    if (sp == "ngram") {
      c.speculative_tokens = 4;
    } else if (sp.rfind("ngram:", 0) == 0 && sp.size() > 6 && sp.size() <= 8 &&
               sp.find_first_not_of("0123456789", 6) == std::string::npos) {
      c.speculative_tokens = std::stoi(sp.substr(6));
    } else {
      throw UsageError("flag --speculate: '" + sp + "' is not ngram or ngram:K (K a number of tokens)");
    }
  }
  c.weight_dtype = a.str("--dtype");
  c.kv_dtype = a.str("--kv-dtype");
  c.quantize_embeddings = a.has("--quantize-embeddings");
  c.fp8_per_tensor_scale = a.has("--fp8-per-tensor");
  c.int8_activations = a.has("--w8a8");
  refuse_conversion_flags_without_effect(c);
  // Config errors are usage errors here: name the flag, not the field.
  if (const std::string e = c.validate(); !e.empty())
    throw_usage_naming_flag(e, "EngineConfig",
                            {{"block_size", "--block-size"},
                             {"num_kv_blocks", "--kv-blocks"},
                             {"kv_cache_bytes", "--kv-bytes"},
                             {"max_num_seqs", "--max-num-seqs"},
                             {"max_num_batched_tokens", "--max-num-batched-tokens"},
                             {"max_model_len", "--max-model-len"},
                             {"threads", "--threads"},
                             {"backend", "--backend"},
                             {"gpu_memory_utilization", "--gpu-memory-utilization"},
                             {"weight_dtype", "--dtype"},
                             {"kv_dtype", "--kv-dtype"},
                             {"int8_activations", "--w8a8"},
                             {"speculative_tokens", "--speculate"}});
  refuse_cuda_flags_on_cpu(a, c);
  return c;
}

void add_sampling_flags(Args& a) {
  a.flag("--max-tokens", "N", "most tokens to generate", "128");
  a.flag("--temperature", "T", "sampling temperature; 0 = greedy", "0");
  a.flag("--top-k", "K", "keep the K most likely tokens; 0 = off", "0");
  a.flag("--top-p", "P", "keep the smallest set with probability >= P; 1 = off", "1");
  a.flag("--min-p", "P", "drop tokens below P x the top probability; 0 = off", "0");
  a.flag("--repetition-penalty", "R", "penalise tokens already seen; 1 = off", "1");
  a.flag("--seed", "S", "sampling seed (default: engine seed + request id)");
  a.flag("--stop", "STR", "stop when this text appears (not included)", "", true);
  a.flag("--ignore-eos", "", "keep generating past the end-of-sequence token");
  a.flag("--no-repeat-ngram-size", "N", "never repeat an n-gram of this size; 0 = off", "0");
  a.flag("--logit-bias", "ID:BIAS", "add BIAS to token ID's logit (-100 bans it)", "", true);
  a.flag("--logprobs", "K",
         "with --json: each token's log-probability and the K most likely alternatives (0..20)");
  a.flag("--prompt-logprobs", "K",
         "with --json: each prompt token's log-probability (after the first) and K alternatives (0..20)");
}

SamplingParams sampling_from(const Args& a) {
  SamplingParams p;
  p.max_tokens = (int)a.integer("--max-tokens", 1, 1 << 24);
  p.temperature = (float)a.number("--temperature", 0, 100);
  p.top_k = (int)a.integer("--top-k", 0, 1 << 24);
  p.top_p = (float)a.number("--top-p", 1e-9, 1);
  p.min_p = (float)a.number("--min-p", 0, 1);
  p.repetition_penalty = (float)a.number("--repetition-penalty", 1e-6, 100);
  if (a.has("--seed")) p.seed = (uint64_t)a.integer("--seed", 0, INT64_MAX);
  p.stop = a.all("--stop");
  p.ignore_eos = a.has("--ignore-eos");
  if (a.has("--logprobs")) p.logprobs = (int)a.integer("--logprobs", 0, 20);
  if (a.has("--prompt-logprobs")) p.prompt_logprobs = (int)a.integer("--prompt-logprobs", 0, 20);
  p.no_repeat_ngram_size = (int)a.integer("--no-repeat-ngram-size", 0, 1 << 20);
  for (const std::string& s : a.all("--logit-bias")) {
    const size_t colon = s.find(':');
    try {
      size_t u1 = 0, u2 = 0;
      const std::string id = s.substr(0, colon), bias = colon == std::string::npos ? "" : s.substr(colon + 1);
      const long v = std::stol(id, &u1);
      const float b = std::stof(bias, &u2);
      if (colon == std::string::npos || u1 != id.size() || u2 != bias.size() || v < 0 || !std::isfinite(b))
        throw std::invalid_argument(s);
      p.logit_bias[(int32_t)v] = b;
    } catch (const std::exception&) {
      throw UsageError("flag --logit-bias: '" + s + "' is not ID:BIAS (a token id and a number)");
    }
  }
  return p;
}

nlohmann::json model_json(const ModelInfo& m) {
  nlohmann::json tensors = nlohmann::json::array();
  for (const auto& t : m.tensors)
    tensors.push_back({{"name", t.name}, {"dtype", t.dtype}, {"shape", t.shape}, {"bytes", t.bytes}});
  return {{"path", m.path},
          {"format", m.format},
          {"architecture", m.architecture},
          {"name", m.name},
          {"synthetic", m.synthetic},
          {"dim", m.dim},
          {"hidden_dim", m.hidden_dim},
          {"n_layers", m.n_layers},
          {"n_heads", m.n_heads},
          {"n_kv_heads", m.n_kv_heads},
          {"head_dim", m.head_dim},
          {"vocab_size", m.vocab_size},
          {"context_length", m.context_length},
          {"rope_theta", m.rope_theta},
          {"norm_eps", m.norm_eps},
          {"tied_embeddings", m.tied_embeddings},
          {"file_conversion", m.file_conversion},
          {"n_params", m.n_params},
          {"weight_bytes", m.weight_bytes},
          {"tokenizer", m.tokenizer},
          {"tensors", tensors}};
}

nlohmann::json config_json(const EngineConfig& c) {
  // The engine writes it (one list of keys for CLI output and benchmark results).
  return nlohmann::json::parse(to_json(c));
}

void refuse_directory(const std::string& path, const char* what) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) throw Error(path + ": is a directory, not a " + what);
}

std::string read_file(const std::string& path) {
  refuse_directory(path, "file");
  std::ifstream f(path, std::ios::binary);
  if (!f) throw Error(path + ": cannot open");
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

}  // namespace brisk::cli
