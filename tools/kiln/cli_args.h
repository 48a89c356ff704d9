// Minimal argument parsing for the kiln tool: repeated options, NAME=VALUE pairs,
// and a one-line user_error for anything it does not understand.
#pragma once
#include <map>
#include <string>
#include <vector>

namespace kiln {

struct Args {
  std::vector<std::string> positional;
  std::multimap<std::string, std::string> options;  // "--input" -> "x=a.npy"
  std::vector<std::string> flags;                   // "--json", "-O2", ...

  bool flag(const std::string &f) const;
  std::string get(const std::string &opt, const std::string &def = "") const;
  std::vector<std::string> all(const std::string &opt) const;
};

// `value_opts` take a value (`--opt V` or `--opt=V`); `flag_opts` don't. Anything else
// starting with '-' is a user_error naming it.
Args parse_args(int argc, char **argv, int first, const std::vector<std::string> &value_opts,
                const std::vector<std::string> &flag_opts);

// "1x3x224x224" -> {1,3,224,224}; user_error on malformed text.
std::vector<int64_t> parse_shape(const std::string &text, const std::string &what);
// "name=value" -> {name, value}; user_error if there is no '='.
std::pair<std::string, std::string> split_pair(const std::string &text, const std::string &opt);

}  // namespace kiln
