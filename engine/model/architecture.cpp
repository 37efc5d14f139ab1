#include "model/architecture.h"

namespace brisk {

namespace {
// Mistral is the Llama graph with GQA and a larger rope theta; both run on
// the same model code. (Qwen2's QKV bias would add a column to this table.)
const std::vector<Architecture>& table() {
  static const std::vector<Architecture> t = {
      {"llama", "LlamaForCausalLM", 10000.0f, 1e-5f},
      {"mistral", "MistralForCausalLM", 1000000.0f, 1e-5f},
  };
  return t;
}
}  // namespace

const Architecture* find_architecture(const std::string& name) {
  for (const auto& a : table())
    if (a.name == name) return &a;
  return nullptr;
}

const Architecture* find_architecture_by_hf_class(const std::string& hf_class) {
  for (const auto& a : table())
    if (a.hf_class == hf_class) return &a;
  return nullptr;
}

std::string known_architectures() {
  std::string s;
  for (const auto& a : table()) s += (s.empty() ? "" : ", ") + a.name;
  return s;
}

}  // namespace brisk
