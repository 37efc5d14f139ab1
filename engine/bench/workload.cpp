// Built-in workloads: resources/workloads/*.json, embedded at build time
// (resources/embed_workloads.cmake), parsed by the same code as user files.
#include <cstring>

#include "bench/bench_json.h"

extern const char* const brisk_builtin_workloads[][2];

namespace brisk {

std::vector<std::string> builtin_workload_names() {
  std::vector<std::string> names;
  for (int i = 0; brisk_builtin_workloads[i][0]; ++i) names.push_back(brisk_builtin_workloads[i][0]);
  return names;
}

WorkloadSpec builtin_workload(const std::string& name) {
  for (int i = 0; brisk_builtin_workloads[i][0]; ++i)
    if (name == brisk_builtin_workloads[i][0])
      return workload_from_json(brisk_builtin_workloads[i][1], "builtin:" + name);
  std::string known;
  for (const std::string& n : builtin_workload_names()) known += (known.empty() ? "" : ", ") + n;
  throw Error("builtin workload '" + name + "' does not exist (built-in: " + known + ")");
}

}  // namespace brisk
