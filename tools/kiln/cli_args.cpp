#include "cli_args.h"

#include <algorithm>

#include "support/error.h"

namespace kiln {

bool Args::flag(const std::string &f) const { return std::find(flags.begin(), flags.end(), f) != flags.end(); }

std::string Args::get(const std::string &opt, const std::string &def) const {
  auto it = options.find(opt);
  return it == options.end() ? def : it->second;
}

std::vector<std::string> Args::all(const std::string &opt) const {
  std::vector<std::string> r;
  auto [b, e] = options.equal_range(opt);
  for (auto it = b; it != e; ++it) r.push_back(it->second);
  return r;
}

Args parse_args(int argc, char **argv, int first, const std::vector<std::string> &value_opts,
                const std::vector<std::string> &flag_opts) {
  Args a;
  auto is = [](const std::vector<std::string> &v, const std::string &s) {
    return std::find(v.begin(), v.end(), s) != v.end();
  };
  for (int i = first; i < argc; ++i) {
    std::string s = argv[i];
    if (s.size() > 1 && s[0] == '-') {
      std::string name = s, value;
      size_t eq = s.find('=');
      bool has_eq = s.rfind("--", 0) == 0 && eq != std::string::npos;
      if (has_eq) {
        name = s.substr(0, eq);
        value = s.substr(eq + 1);
      }
      if (is(value_opts, name)) {
        if (!has_eq) {
          user_assert(i + 1 < argc) << "option " << name << " needs a value";
          value = argv[++i];
        }
        a.options.emplace(name, value);
      } else if (is(flag_opts, name) && !has_eq) {
        a.flags.push_back(name);
      } else {
        user_error << "unknown option '" << s << "' (see --help)";
      }
    } else {
      a.positional.push_back(s);
    }
  }
  return a;
}

std::vector<int64_t> parse_shape(const std::string &text, const std::string &what) {
  std::vector<int64_t> dims;
  size_t p = 0;
  user_assert(!text.empty()) << what << ": empty shape";
  while (p <= text.size()) {
    size_t e = text.find_first_of("x,", p);
    if (e == std::string::npos) e = text.size();
    std::string tok = text.substr(p, e - p);
    user_assert(!tok.empty() && tok.find_first_not_of("0123456789") == std::string::npos && tok.size() < 12)
        << what << ": bad shape '" << text << "' (expected e.g. 1x3x224x224)";
    dims.push_back(std::stoll(tok));
    p = e + 1;
  }
  return dims;
}

std::pair<std::string, std::string> split_pair(const std::string &text, const std::string &opt) {
  size_t eq = text.find('=');
  user_assert(eq != std::string::npos && eq > 0) << opt << " expects NAME=VALUE, got '" << text << "'";
  return {text.substr(0, eq), text.substr(eq + 1)};
}

}  // namespace kiln
