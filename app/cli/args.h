// A small declarative flag parser for brisk-cli: every flag is declared with
// its help text, unknown flags and bad values are errors.
#pragma once
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace brisk::cli {

class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class Args {
 public:
  Args(std::string command, std::string synopsis, std::string description)
      : command_(std::move(command)), synopsis_(std::move(synopsis)), description_(std::move(description)) {}
  // value_name empty: a boolean switch. repeatable: may be given many times.
  void flag(const std::string& name, const std::string& value_name, const std::string& help,
            const std::string& def = "", bool repeatable = false);
  void alias(const std::string& short_name, const std::string& long_name) { aliases_[short_name] = long_name; }
  // Throws UsageError; returns false when --help was asked (help printed).
  bool parse(const std::vector<std::string>& argv);
  std::string help() const;

  bool has(const std::string& name) const;
  std::string str(const std::string& name) const;
  std::vector<std::string> all(const std::string& name) const;
  long long integer(const std::string& name, long long lo, long long hi) const;
  double number(const std::string& name, double lo, double hi) const;
  const std::vector<std::string>& positional() const { return positional_; }

 private:
  struct Flag {
    std::string value_name, help, def;
    bool repeatable;
  };
  std::string command_, synopsis_, description_;
  std::vector<std::string> order_;
  std::map<std::string, Flag> flags_;
  std::map<std::string, std::string> aliases_;
  std::map<std::string, std::vector<std::string>> values_;
  std::vector<std::string> positional_;
};

}  // namespace brisk::cli
