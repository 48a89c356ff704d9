// Runtime kernels of text ops: StringNormalizer and TfIdfVectorizer. Case changes and
// case-insensitive comparison are ASCII-only (the locale attribute is not used).
#include <algorithm>
#include <cctype>
#include <map>
#include <set>
#include <variant>

#include "runtime/runtime_kernel.h"
#include "support/error.h"

namespace kiln {

namespace {

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char ch) { return std::tolower(ch); });
  return s;
}
std::string upper(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char ch) { return std::toupper(ch); });
  return s;
}

const std::vector<std::string> &strings_attr(const Node &n, const char *name) {
  static const std::vector<std::string> none;
  auto it = n.attrs.find(name);
  return it == n.attrs.end() ? none : it->second.strings;
}

}  // namespace

// Drops stopwords, then changes case. An input whose every word is dropped gives a
// single empty string.
void run_string_normalizer(RuntimeKernelContext &c) {
  const Node &n = c.node;
  const Tensor &x = c.input(0);
  user_assert(x.dtype() == DType::String) << n.describe() << ": input must be a string tensor";
  user_assert(x.rank() == 1 || (x.rank() == 2 && x.shape()[0] == 1))
      << n.describe() << ": input must be [C] or [1, C], got " << shape_str(x.shape());
  bool sensitive = n.attr_i("is_case_sensitive", 0) != 0;
  std::string action = n.attr_s("case_change_action", "NONE");
  std::set<std::string> stop;
  for (const std::string &s : strings_attr(n, "stopwords")) stop.insert(sensitive ? s : lower(s));
  std::vector<std::string> kept;
  for (const std::string &s : x.strings()) {
    if (stop.count(sensitive ? s : lower(s))) continue;
    kept.push_back(action == "LOWER" ? lower(s) : action == "UPPER" ? upper(s) : s);
  }
  if (kept.empty()) kept.emplace_back();
  int64_t count = static_cast<int64_t>(kept.size());
  Tensor y(DType::String, x.rank() == 1 ? std::vector<int64_t>{count} : std::vector<int64_t>{1, count});
  y.strings() = std::move(kept);
  c.out[0] = std::move(y);
}

namespace {

using Token = std::variant<int64_t, std::string>;

// The pool's n-grams mapped to output columns: ngram_counts[i] is where the (i+1)-grams
// start in the pool; ngram_indexes gives each n-gram's column, in pool order.
std::map<std::vector<Token>, int64_t> read_pool(const Node &n, bool strings) {
  std::vector<Token> pool;
  if (strings) {
    for (const std::string &s : strings_attr(n, "pool_strings")) pool.emplace_back(s);
  } else {
    for (int64_t v : n.attr_ints("pool_int64s")) pool.emplace_back(v);
  }
  std::vector<int64_t> counts = n.attr_ints("ngram_counts"), indexes = n.attr_ints("ngram_indexes");
  std::map<std::vector<Token>, int64_t> r;
  size_t k = 0;
  for (size_t g = 0; g < counts.size(); ++g) {
    int64_t begin = counts[g], end = g + 1 < counts.size() ? counts[g + 1] : static_cast<int64_t>(pool.size());
    int64_t len = static_cast<int64_t>(g) + 1;
    user_assert(begin >= 0 && begin <= end && end <= static_cast<int64_t>(pool.size()) && (end - begin) % len == 0)
        << n.describe() << ": ngram_counts do not partition the pool into " << len << "-grams";
    for (int64_t p = begin; p < end; p += len, ++k) {
      user_assert(k < indexes.size()) << n.describe() << ": fewer ngram_indexes than n-grams in the pool";
      r[std::vector<Token>(pool.begin() + p, pool.begin() + p + len)] = indexes[k];
    }
  }
  return r;
}

}  // namespace

// Counts the pool's n-grams (lengths min_gram_length..max_gram_length, items up to
// max_skip_count apart) in each row; unigrams are counted once, not once per skip.
void run_tfidf(RuntimeKernelContext &c) {
  const Node &n = c.node;
  const Tensor &x = c.input(0);
  bool strings = x.dtype() == DType::String;
  user_assert(x.rank() == 1 || x.rank() == 2) << n.describe() << ": input must be 1-D or 2-D";
  int64_t min_n = n.attr_i("min_gram_length", 1), max_n = n.attr_i("max_gram_length", 1);
  int64_t max_skip = n.attr_i("max_skip_count", 0);
  user_assert(min_n >= 1 && min_n <= max_n && max_skip >= 0)
      << n.describe() << ": invalid min_gram_length/max_gram_length/max_skip_count";
  std::string mode = n.attr_s("mode", "");
  std::vector<double> weights = n.attr_floats("weights");
  auto pool = read_pool(n, strings);
  int64_t width = 0;
  for (int64_t i : n.attr_ints("ngram_indexes")) width = std::max(width, i + 1);
  user_assert(weights.empty() || static_cast<int64_t>(weights.size()) >= width)
      << n.describe() << ": weights must have one entry per output column";
  int64_t rows = x.rank() == 1 ? 1 : x.shape()[0], cols = x.shape().back();
  Tensor y(DType::F32, x.rank() == 1 ? std::vector<int64_t>{width} : std::vector<int64_t>{rows, width});
  float *out = y.as<float>();
  auto token = [&](int64_t i) -> Token {
    if (strings) return x.strings()[i];
    return x.get_i64(i);
  };
  for (int64_t r = 0; r < rows; ++r) {
    std::vector<Token> row;
    for (int64_t i = 0; i < cols; ++i) row.push_back(token(r * cols + i));
    std::vector<double> freq(width, 0.0);
    int64_t first_len = min_n;
    for (int64_t dist = 1; dist <= max_skip + 1; ++dist) {
      for (int64_t start = 0; start < cols; ++start) {
        std::vector<Token> gram;
        for (int64_t len = 1, pos = start; len <= max_n && pos < cols; ++len, pos += dist) {
          gram.push_back(row[pos]);
          if (len < first_len) continue;
          auto it = pool.find(gram);
          if (it != pool.end()) freq[it->second] += 1;
        }
      }
      if (first_len == 1) ++first_len;  // unigrams do not depend on the skip distance
      if (first_len > max_n) break;
    }
    for (int64_t k = 0; k < width; ++k) {
      double f = freq[k], wk = weights.empty() ? 1.0 : weights[k];
      if (mode == "IDF") f = f > 0 ? wk : 0;
      if (mode == "TFIDF") f *= wk;
      out[r * width + k] = static_cast<float>(f);
    }
  }
  c.out[0] = std::move(y);
}

}  // namespace kiln
