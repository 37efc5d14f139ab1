// brisk-cli: the engine without the window.
#include <cstdio>
#include <string>
#include <vector>

#include "brisk/error.h"
#include "cli/common.h"
#include "cli/fatal_signal.h"

namespace {

const char* kUsage =
    "usage: brisk-cli COMMAND [args]   (brisk-cli COMMAND --help for its flags)\n\n"
    "commands:\n"
    "  info MODEL          describe a model (architecture, shape, parameters, dtypes, bytes)\n"
    "  generate MODEL      generate text from -p PROMPT, or a --prompts JSONL file\n"
    "  bench MODEL         run a synthetic workload and report throughput and latency\n"
    "  perplexity MODEL    perplexity of --text FILE; KL divergence against --baseline-logits\n"
    "  agreement MODEL     greedy-token agreement of --dtype/--kv-dtype with the FP32 run\n"
    "  make-model OUT      write a Llama-shaped GGUF with seeded random weights\n"
    "  sysinfo             this machine: CPU, SIMD features, measured read bandwidth and FMA peak\n"
    "  quantize IN OUT     convert a model's weights (int8, fp8, q8_0, f16, ...) and write a GGUF\n"
    "  report RESULTS...   build an HTML/PDF/Markdown/JSON/CSV report from stored benchmark results\n\n"
    "MODEL is a .gguf file, a Hugging Face directory, a llama2.c .bin, or 'demo' (the built-in\n"
    "synthetic model). See docs/CLI.md.\n";

}  // namespace

int main(int argc, char** argv) {
  using namespace brisk::cli;
  install_fatal_signal_handler();
  if (argc < 2) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  const std::string cmd = argv[1];
  const std::vector<std::string> rest(argv + 2, argv + argc);
  try {
    if (cmd == "--help" || cmd == "-h" || cmd == "help") {
      std::fputs(kUsage, stdout);
      return 0;
    }
    if (cmd == "info") return cmd_info(rest);
    if (cmd == "generate") return cmd_generate(rest);
    if (cmd == "bench") return cmd_bench(rest);
    if (cmd == "perplexity") return cmd_perplexity(rest);
    if (cmd == "agreement") return cmd_agreement(rest);
    if (cmd == "make-model") return cmd_make_model(rest);
    if (cmd == "sysinfo") return cmd_sysinfo(rest);
    if (cmd == "quantize") return cmd_quantize(rest);
    if (cmd == "report") return cmd_report(rest);
    std::fprintf(stderr, "brisk-cli: unknown command '%s'\n\n%s", cmd.c_str(), kUsage);
    return 2;
  } catch (const UsageError& e) {
    std::fprintf(stderr, "brisk-cli %s: %s\n", cmd.c_str(), e.what());
    return 2;
  } catch (const std::exception& e) {  // brisk::Error, and anything unforeseen
    std::fprintf(stderr, "brisk-cli %s: error: %s\n", cmd.c_str(), e.what());
    return 1;
  }
}
