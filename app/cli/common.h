#pragma once
#include <climits>
#include <initializer_list>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>

#include "brisk/engine.h"
#include "cli/args.h"

namespace brisk::cli {

// Flags shared by every command that builds an engine.
void add_engine_flags(Args& a);
// A validate() message ("Type.field = value: why") thrown as a UsageError
// that names the flag which set the field, where one of `fields` did.
[[noreturn]] void throw_usage_naming_flag(const std::string& e, const std::string& type,
                                          std::initializer_list<std::pair<const char*, const char*>> fields);
// Conversion flags that would change nothing (--quantize-embeddings without
// a --dtype, --fp8-per-tensor without an fp8 one) are refused, not ignored.
void refuse_conversion_flags_without_effect(const EngineConfig& c);
// CUDA-only flags (--no-cuda-graphs, --gpu-memory-utilization, ...) with
// --backend cpu are refused, naming the flag; with --backend auto where it
// resolves to the CPU, one warning line says they are ignored, and c's fields
// go back to their defaults. engine_config_from calls it.
void refuse_cuda_flags_on_cpu(const Args& a, EngineConfig& c);
EngineConfig engine_config_from(const Args& a, const std::string& model);
void add_sampling_flags(Args& a);
SamplingParams sampling_from(const Args& a);
nlohmann::json model_json(const ModelInfo& m);
nlohmann::json config_json(const EngineConfig& c);

std::string read_file(const std::string& path);  // brisk::Error naming the file
// An ifstream opens a directory and reads nothing, which a reader would take
// for an empty file: throws brisk::Error "PATH: is a directory, not a WHAT".
void refuse_directory(const std::string& path, const char* what);

int cmd_info(const std::vector<std::string>& argv);
int cmd_generate(const std::vector<std::string>& argv);
int cmd_make_model(const std::vector<std::string>& argv);
int cmd_sysinfo(const std::vector<std::string>& argv);
int cmd_quantize(const std::vector<std::string>& argv);
int cmd_bench(const std::vector<std::string>& argv);
int cmd_perplexity(const std::vector<std::string>& argv);
int cmd_agreement(const std::vector<std::string>& argv);
int cmd_report(const std::vector<std::string>& argv);

}  // namespace brisk::cli
