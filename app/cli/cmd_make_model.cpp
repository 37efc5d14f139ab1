#include <cstdio>
#include <sstream>

#include "brisk/model_tools.h"
#include "cli/common.h"

namespace brisk::cli {

int cmd_make_model(const std::vector<std::string>& argv) {
  std::string shapes;
  for (const auto& s : synthetic_shapes()) shapes += "  " + s.name + ": " + s.description + "\n";
  Args a("make-model", "(--shape NAME | --dims D,H,L,HEADS,KV_HEADS[,VOCAB[,CTX]]) [--dtype f32|f16|bf16] OUT.gguf",
         "Write a Llama-shaped GGUF with seeded random weights and the demo vocabulary (synthetic: its\n"
         "text is gibberish), for tests and benchmarks at real model sizes. Shapes:\n" + shapes);
  a.flag("--shape", "NAME", "a named shape", "demo");
  a.flag("--dims", "D,H,L,HEADS,KV[,VOCAB[,CTX]]", "custom dimensions");
  a.flag("--dtype", "f32|f16|bf16", "weight type of the matrices", "f32");
  a.flag("--seed", "S", "weight seed", "0");
  if (!a.parse(argv)) return 0;
  if (a.positional().size() != 1) throw UsageError("make-model takes exactly one OUT.gguf (see --help)");
  SyntheticModelSpec spec;
  spec.shape = a.str("--shape");
  if (a.has("--dims")) {
    if (a.has("--shape")) throw UsageError("give --shape or --dims, not both");
    std::vector<int> d;
    std::stringstream ss(a.str("--dims"));
    std::string item;
    while (std::getline(ss, item, ',')) {
      try {
        size_t used = 0;
        d.push_back(std::stoi(item, &used));
        if (used != item.size() || d.back() <= 0) throw std::invalid_argument(item);
      } catch (const std::exception&) {
        throw UsageError("flag --dims: '" + item + "' is not a positive integer");
      }
    }
    if (d.size() < 5 || d.size() > 7) throw UsageError("flag --dims needs 5 to 7 comma-separated numbers");
    spec.shape = "custom";
    spec.dim = d[0], spec.hidden_dim = d[1], spec.n_layers = d[2], spec.n_heads = d[3], spec.n_kv_heads = d[4];
    if (d.size() > 5) spec.vocab_size = d[5];
    if (d.size() > 6) spec.context_length = d[6];
  }
  // Bad values are usage errors (exit 2) naming the flag, as for every other command.
  if (!a.has("--dims")) {
    std::string names;
    bool known = false;
    for (const auto& s : synthetic_shapes()) {
      known = known || s.name == spec.shape;
      names += (names.empty() ? "" : ", ") + s.name;
    }
    if (!known) throw UsageError("flag --shape: '" + spec.shape + "' is not a shape (known: " + names + ")");
  } else if (spec.dim % spec.n_heads != 0 || (spec.n_kv_heads > 0 && spec.n_heads % spec.n_kv_heads != 0)) {
    throw UsageError("flag --dims: dim " + std::to_string(spec.dim) + " must be divisible by heads " +
                     std::to_string(spec.n_heads) + ", and heads by KV heads " + std::to_string(spec.n_kv_heads));
  }
  spec.dtype = a.str("--dtype");
  if (spec.dtype != "f32" && spec.dtype != "f16" && spec.dtype != "bf16")
    throw UsageError("flag --dtype: '" + spec.dtype + "' is not f32, f16 or bf16 (quantize converts a model to " +
                     "int8, fp8 or q8_0)");
  spec.seed = (uint64_t)a.integer("--seed", 0, INT64_MAX);
  const ModelInfo m = make_synthetic_model_file(spec, a.positional()[0]);
  std::printf("wrote %s: synthetic %s, %lld parameters (%.1fM), %.1f MiB\n", a.positional()[0].c_str(),
              spec.shape.c_str(), (long long)m.n_params, m.n_params / 1e6, m.weight_bytes / 1048576.0);
  return 0;
}

}  // namespace brisk::cli
