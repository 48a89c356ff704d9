#include "graph/einsum_equation.h"

#include <algorithm>
#include <map>

#include "support/error.h"

namespace kiln {

namespace {

// Labels in ASCII order ('A' < 'a'), so sorting labels sorts letters as numpy does.
int letter_label(char ch) {
  if (ch >= 'A' && ch <= 'Z') return ch - 'A';
  if (ch >= 'a' && ch <= 'z') return 26 + (ch - 'a');
  return -1;
}

// One operand's subscripts: letters and at most one ellipsis (marked by -1).
std::vector<int> parse_term(const std::string &term, const Node &n) {
  std::vector<int> r;
  bool ellipsis = false;
  for (size_t i = 0; i < term.size(); ++i) {
    char ch = term[i];
    if (ch == ' ' || ch == '\t') continue;
    if (ch == '.') {
      user_assert(term.compare(i, 3, "...") == 0 && !ellipsis)
          << n.describe() << ": malformed ellipsis in einsum term '" << term << "'";
      ellipsis = true;
      r.push_back(-1);
      i += 2;
      continue;
    }
    int l = letter_label(ch);
    user_assert(l >= 0) << n.describe() << ": invalid character '" << ch << "' in einsum equation";
    r.push_back(l);
  }
  return r;
}

std::vector<std::string> split(const std::string &s, char sep) {
  std::vector<std::string> parts;
  size_t start = 0;
  for (;;) {
    size_t p = s.find(sep, start);
    parts.push_back(s.substr(start, p == std::string::npos ? std::string::npos : p - start));
    if (p == std::string::npos) break;
    start = p + 1;
  }
  return parts;
}

}  // namespace

EinsumEquation EinsumEquation::parse(const std::string &equation, const std::vector<int> &ranks, const Node &n) {
  EinsumEquation e;
  size_t arrow = equation.find("->");
  std::string lhs = equation.substr(0, arrow);
  std::vector<std::string> terms = split(lhs, ',');
  user_assert(terms.size() == ranks.size())
      << n.describe() << ": einsum equation '" << equation << "' has " << terms.size() << " operands, the node has "
      << ranks.size() << " inputs";
  std::vector<std::vector<int>> raw;
  for (auto &t : terms) raw.push_back(parse_term(t, n));
  // The ellipsis of each input covers the axes its letters do not.
  for (size_t i = 0; i < raw.size(); ++i) {
    bool has_ell = std::count(raw[i].begin(), raw[i].end(), -1) > 0;
    int letters = static_cast<int>(raw[i].size()) - (has_ell ? 1 : 0);
    int ell = ranks[i] - letters;
    user_assert(has_ell ? ell >= 0 : ell == 0)
        << n.describe() << ": einsum term '" << terms[i] << "' does not match input " << i << " of rank " << ranks[i];
    e.ellipsis_rank = std::max(e.ellipsis_rank, ell);
  }
  std::map<int, int> count;
  for (size_t i = 0; i < raw.size(); ++i) {
    int ell = ranks[i] - static_cast<int>(raw[i].size()) + 1;
    std::vector<int> labels;
    for (int l : raw[i]) {
      if (l >= 0) {
        labels.push_back(l);
        ++count[l];
        continue;
      }
      for (int t = 0; t < ell; ++t) labels.push_back(kEllipsis + e.ellipsis_rank - ell + t);
    }
    e.inputs.push_back(labels);
  }
  if (arrow == std::string::npos) {
    for (int t = 0; t < e.ellipsis_rank; ++t) e.output.push_back(kEllipsis + t);
    for (auto &[l, k] : count) {
      if (k == 1) e.output.push_back(l);
    }
  } else {
    std::string rhs = equation.substr(arrow + 2);
    user_assert(rhs.find("->") == std::string::npos && rhs.find(',') == std::string::npos)
        << n.describe() << ": malformed einsum output '" << rhs << "'";
    for (int l : parse_term(rhs, n)) {
      if (l < 0) {
        for (int t = 0; t < e.ellipsis_rank; ++t) e.output.push_back(kEllipsis + t);
        continue;
      }
      user_assert(count.count(l)) << n.describe() << ": einsum output label '" << rhs
                                  << "' names a letter no input uses";
      user_assert(std::count(e.output.begin(), e.output.end(), l) == 0)
          << n.describe() << ": einsum output repeats a letter";
      e.output.push_back(l);
    }
  }
  std::vector<int> all;
  for (auto &in : e.inputs) all.insert(all.end(), in.begin(), in.end());
  std::sort(all.begin(), all.end());
  all.erase(std::unique(all.begin(), all.end()), all.end());
  for (int l : all) {
    if (std::find(e.output.begin(), e.output.end(), l) == e.output.end()) e.summed.push_back(l);
  }
  return e;
}

}  // namespace kiln
