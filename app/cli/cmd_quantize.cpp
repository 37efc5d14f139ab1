#include <cstdio>

#include "brisk/model_tools.h"
#include "cli/common.h"

namespace brisk::cli {

int cmd_quantize(const std::vector<std::string>& argv) {
  Args a("quantize", "IN OUT.gguf --dtype f32|f16|bf16|q8_0|int8|fp8-e4m3|fp8-e5m2 [flags]",
         "Convert a model's matrices to another precision and write a GGUF. INT8 and FP8 use one scale\n"
         "per output channel (stored as '<tensor>.scale' F32 tensors; FP8 uses Brisk's own GGUF type ids\n"
         "1000/1001, since GGML has none). Norms stay as stored; the embedding table and classifier too\n"
         "unless --quantize-embeddings. IN is any model brisk reads (GGUF, HF directory, llama2.c .bin).");
  a.flag("--dtype", "TYPE", "target weight type");
  a.flag("--tokenizer", "FILE", "tokenizer .model or llama2.c tokenizer .bin (needed for llama2.c checkpoints)");
  a.flag("--quantize-embeddings", "", "convert the embedding table and classifier too");
  a.flag("--fp8-per-tensor", "", "with an fp8 --dtype: one scale per tensor instead of per output channel");
  a.flag("--threads", "N", "CPU threads, 0 = physical cores", "0");
  if (!a.parse(argv)) return 0;
  if (a.positional().size() != 2) throw UsageError("quantize takes IN and OUT.gguf (see --help)");
  if (!a.has("--dtype")) throw UsageError("flag --dtype is required");
  EngineConfig c;
  c.model = a.positional()[0];
  c.tokenizer = a.str("--tokenizer");
  c.weight_dtype = a.str("--dtype");
  c.quantize_embeddings = a.has("--quantize-embeddings");
  c.fp8_per_tensor_scale = a.has("--fp8-per-tensor");
  c.threads = (int)a.integer("--threads", 0, 1024);
  if (c.weight_dtype == "auto") throw UsageError("flag --dtype: give a target type, not auto");
  refuse_conversion_flags_without_effect(c);
  if (const std::string e = c.validate(); !e.empty())
    throw_usage_naming_flag(e, "EngineConfig", {{"weight_dtype", "--dtype"}});
  const ModelInfo in = inspect_model(c.model, c.tokenizer);
  const ModelInfo m = quantize_model_file(c, a.positional()[1]);
  std::printf("wrote %s: %s, %.1f MiB (from %.1f MiB)\n", a.positional()[1].c_str(), m.converted_to.c_str(),
              m.weight_bytes / 1048576.0, in.weight_bytes / 1048576.0);
  return 0;
}

}  // namespace brisk::cli
