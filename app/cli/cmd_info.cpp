#include <cstdio>
#include <iostream>
#include <map>

#include "brisk/model_tools.h"
#include "cli/common.h"

namespace brisk::cli {

int cmd_info(const std::vector<std::string>& argv) {
  Args a("info", "MODEL [flags]",
         "Describe a model: architecture, shape, parameter count, tensor dtypes and bytes.\n"
         "MODEL is a .gguf file, a Hugging Face directory, a llama2.c .bin, or 'demo'.");
  a.flag("--tokenizer", "FILE", "tokenizer .model or llama2.c tokenizer .bin (overrides the model's)");
  a.flag("--json", "", "print one JSON object");
  a.flag("--tensors", "", "list every tensor");
  if (!a.parse(argv)) return 0;
  if (a.positional().size() != 1) throw UsageError("info takes exactly one MODEL (see --help)");
  const ModelInfo m = inspect_model(a.positional()[0], a.str("--tokenizer"));
  if (a.has("--json")) {
    std::cout << model_json(m).dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    return 0;
  }
  std::map<std::string, std::pair<int, uint64_t>> by_dtype;
  for (const auto& t : m.tensors) {
    by_dtype[t.dtype].first++;
    by_dtype[t.dtype].second += t.bytes;
  }
  std::printf("model         %s\n", m.path.c_str());
  if (m.synthetic) std::printf("              SYNTHETIC demo model: random weights, its text is gibberish\n");
  std::printf("name          %s\n", m.name.c_str());
  if (!m.file_conversion.empty())
    std::printf("quantized     by brisk quantize: %s\n", m.file_conversion.c_str());
  std::printf("format        %s\n", m.format.c_str());
  std::printf("architecture  %s\n", m.architecture.c_str());
  std::printf("shape         dim %d, hidden %d, layers %d, heads %d (kv %d, head dim %d)\n", m.dim, m.hidden_dim,
              m.n_layers, m.n_heads, m.n_kv_heads, m.head_dim);
  std::printf("vocab         %d tokens (%s)\n", m.vocab_size, m.tokenizer.c_str());
  std::printf("context       %d tokens, rope theta %g, norm eps %g\n", m.context_length, m.rope_theta, m.norm_eps);
  std::printf("classifier    %s\n", m.tied_embeddings ? "tied to the token embedding" : "separate");
  std::printf("parameters    %lld (%.2fM)\n", (long long)m.n_params, m.n_params / 1e6);
  std::printf("weights       %llu bytes (%.2f MiB)\n", (unsigned long long)m.weight_bytes, m.weight_bytes / 1048576.0);
  for (const auto& [dt, v] : by_dtype)
    std::printf("  %-5s       %d tensors, %llu bytes\n", dt.c_str(), v.first, (unsigned long long)v.second);
  if (a.has("--tensors"))
    for (const auto& t : m.tensors)
      std::printf("  %-40s %-5s [%lld, %lld] %llu bytes\n", t.name.c_str(), t.dtype.c_str(), (long long)t.shape[0],
                  (long long)t.shape[1], (unsigned long long)t.bytes);
  return 0;
}

}  // namespace brisk::cli
