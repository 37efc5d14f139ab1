// The architectures Brisk runs, as data. A new Llama-family architecture is
// a row here (names, defaults), not a fork of the model code.
#pragma once
#include <string>
#include <vector>

namespace brisk {

struct Architecture {
  std::string name;               // GGUF general.architecture / HF model_type
  std::string hf_class;           // HF config "architectures" entry
  float default_rope_theta;
  float default_norm_eps;
};

// nullptr when unknown.
const Architecture* find_architecture(const std::string& name);
const Architecture* find_architecture_by_hf_class(const std::string& hf_class);
std::string known_architectures();  // "llama, mistral" for error messages

}  // namespace brisk
