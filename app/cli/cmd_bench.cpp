#include "cli/common.h"
namespace brisk::cli {
int cmd_bench(const std::vector<std::string>&) { throw UsageError("bench: not yet available"); }
}  // namespace brisk::cli
