#include "cli/args.h"

#include <cctype>
#include <cerrno>
#include <climits>
#include <cmath>
#include <cstdlib>
#include <iostream>
#include <sstream>

namespace brisk::cli {

void Args::flag(const std::string& name, const std::string& value_name, const std::string& help,
                const std::string& def, bool repeatable) {
  order_.push_back(name);
  flags_[name] = {value_name, help, def, repeatable};
}

bool Args::parse(const std::vector<std::string>& argv) {
  for (size_t i = 0; i < argv.size(); ++i) {
    std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      std::cout << help();
      return false;
    }
    if (a.size() > 1 && a[0] == '-' && !(a.size() > 1 && (std::isdigit((unsigned char)a[1]) || a[1] == '.'))) {
      std::string value;
      bool has_value = false;
      if (auto eq = a.find('='); eq != std::string::npos && a.rfind("--", 0) == 0) {
        value = a.substr(eq + 1);
        a = a.substr(0, eq);
        has_value = true;
      }
      if (aliases_.count(a)) a = aliases_[a];
      auto it = flags_.find(a);
      if (it == flags_.end()) throw UsageError("unknown flag '" + a + "' for '" + command_ + "' (see --help)");
      if (it->second.value_name.empty()) {
        if (has_value) throw UsageError("flag " + a + " takes no value");
        values_[a].push_back("1");
        continue;
      }
      if (!has_value) {
        if (i + 1 >= argv.size()) throw UsageError("flag " + a + " needs a value (" + it->second.value_name + ")");
        value = argv[++i];
      }
      if (!it->second.repeatable && values_.count(a)) throw UsageError("flag " + a + " given twice");
      values_[a].push_back(value);
    } else {
      positional_.push_back(a);
    }
  }
  return true;
}

std::string Args::help() const {
  std::ostringstream o;
  o << "usage: brisk-cli " << command_ << " " << synopsis_ << "\n\n" << description_ << "\n\nflags:\n";
  for (const auto& n : order_) {
    const Flag& f = flags_.at(n);
    std::string left = "  " + n + (f.value_name.empty() ? "" : " " + f.value_name);
    for (const auto& [s, l] : aliases_)
      if (l == n) left = "  " + s + ", " + left.substr(2);
    o << left;
    o << std::string(left.size() < 34 ? 34 - left.size() : 1, ' ') << f.help;
    if (!f.def.empty()) o << " (default " << f.def << ")";
    if (f.repeatable) o << " [repeatable]";
    o << "\n";
  }
  o << "  -h, --help" << std::string(22, ' ') << "this help\n";
  return o.str();
}

bool Args::has(const std::string& name) const { return values_.count(name) != 0; }

std::string Args::str(const std::string& name) const {
  auto it = values_.find(name);
  if (it != values_.end()) return it->second.back();
  return flags_.at(name).def;
}

std::vector<std::string> Args::all(const std::string& name) const {
  auto it = values_.find(name);
  return it == values_.end() ? std::vector<std::string>{} : it->second;
}

long long Args::integer(const std::string& name, long long lo, long long hi) const {
  const std::string s = str(name);
  char* end = nullptr;
  errno = 0;
  const long long v = std::strtoll(s.c_str(), &end, 10);
  if (s.empty() || *end != '\0' || errno != 0)
    throw UsageError("flag " + name + ": '" + s + "' is not an integer");
  if (v < lo || v > hi)
    throw UsageError("flag " + name + ": " + s + " is out of range [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
  return v;
}

double Args::number(const std::string& name, double lo, double hi) const {
  const std::string s = str(name);
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  if (s.empty() || *end != '\0' || !std::isfinite(v)) throw UsageError("flag " + name + ": '" + s + "' is not a number");
  if (v < lo || v > hi) {
    std::ostringstream o;
    o << "flag " << name << ": " << s << " is out of range [" << lo << ", " << hi << "]";
    throw UsageError(o.str());
  }
  return v;
}

}  // namespace brisk::cli
