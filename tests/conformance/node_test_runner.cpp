// Runs ONNX backend node tests (model.onnx + test_data_set_*/input_*.pb, output_*.pb)
// through kiln and compares with the ONNX backend tolerances (rtol 1e-3, atol 1e-7).
// Each test runs in a forked child so a crash or hang is a failed test, not a dead run.
//
//   kiln_node_tests ROOT [--filter SUBSTR] [--results FILE.tsv] [--expect FILE] [--jobs N] [-O N] [--target T]
//
// -O N compiles at opt level N (default 0, the reference schedules); --target T for
// another code-generation target (x86-64-v3: the AVX2 schedules on an AVX-512 machine).
// --expect names a checked-in list of tests that must pass (the ratchet): the exit code is
// non-zero only if one of those fails. Without it, any failure fails the run.
#include <onnx/onnx_pb.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <sstream>

#include "compiler/compiler.h"
#include "onnx/importer.h"
#include "support/error.h"

namespace fs = std::filesystem;
using namespace kiln;

namespace {

constexpr double kRtol = 1e-3, kAtol = 1e-7;
constexpr int kTimeoutSeconds = 120;

Tensor read_pb(const fs::path &p) {
  std::ifstream f(p, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  onnx::TensorProto tp;
  user_assert(tp.ParseFromString(bytes)) << p.string() << ": not a TensorProto";
  return tensor_from_proto(tp, p.parent_path().string());
}

std::vector<fs::path> numbered(const fs::path &dir, const std::string &prefix) {
  std::vector<fs::path> r;
  for (int i = 0;; ++i) {
    fs::path p = dir / (prefix + std::to_string(i) + ".pb");
    if (!fs::exists(p)) break;
    r.push_back(p);
  }
  return r;
}

// Empty string: equal within tolerance; otherwise the first difference.
std::string compare(const Tensor &got, const Tensor &want, const std::string &name) {
  if (got.dtype() != want.dtype()) {
    return name + ": dtype " + dtype_name(got.dtype()) + ", expected " + dtype_name(want.dtype());
  }
  if (got.shape() != want.shape()) {
    return name + ": shape " + shape_str(got.shape()) + ", expected " + shape_str(want.shape());
  }
  if (want.dtype() == DType::String) {
    for (int64_t i = 0; i < want.numel(); ++i) {
      if (got.strings()[i] != want.strings()[i]) return name + ": string mismatch at " + std::to_string(i);
    }
    return "";
  }
  bool fl = dtype_is_float(want.dtype());
  for (int64_t i = 0; i < want.numel(); ++i) {
    if (fl) {
      double g = got.get_f64(i), w = want.get_f64(i);
      if (std::isnan(w) && std::isnan(g)) continue;
      if (std::isinf(w) && g == w) continue;
      if (!(std::fabs(g - w) <= kAtol + kRtol * std::fabs(w))) {
        std::ostringstream s;
        s << name << ": element " << i << " is " << g << ", expected " << w;
        return s.str();
      }
    } else if (got.get_i64(i) != want.get_i64(i)) {
      std::ostringstream s;
      s << name << ": element " << i << " is " << got.get_i64(i) << ", expected " << want.get_i64(i);
      return s.str();
    }
  }
  return "";
}

// Runs one test; returns "" on pass or a one-line reason.
// Each data set runs twice: the first run plans the memory arena, the second runs in it
// (poisoned by KILN_POISON_ARENA, so a kernel that relies on zeroed outputs fails).
std::string run_test(const fs::path &dir, int opt_level, const std::string &target) {
  try {
    Model m = load_onnx((dir / "model.onnx").string());
    CompileOptions opts;
    opts.opt_level = opt_level;
    opts.target = target;
    auto cm = CompiledModel::compile(std::move(m), opts);
    for (auto &ds : fs::directory_iterator(dir)) {
      if (!ds.is_directory() || ds.path().filename().string().rfind("test_data_set_", 0) != 0) continue;
      auto in_files = numbered(ds.path(), "input_"), out_files = numbered(ds.path(), "output_");
      const Graph &g = cm->graph();
      if (in_files.size() != g.inputs.size()) {
        return "test has " + std::to_string(in_files.size()) + " inputs, graph has " + std::to_string(g.inputs.size());
      }
      std::map<std::string, Tensor> inputs;
      for (size_t i = 0; i < in_files.size(); ++i) {
        Tensor t = read_pb(in_files[i]);
        // The test generator stores bfloat16 data as uint16 bit patterns.
        if (t.dtype() == DType::U16 && g.inputs[i]->dtype == DType::BF16) {
          t = Tensor::borrow(DType::BF16, t.shape(), t.data()).clone();
        }
        inputs[g.inputs[i]->name] = t;
      }
      cm->run(inputs);
      std::vector<Tensor> outs = cm->run(inputs);
      if (outs.size() != out_files.size()) return "output count differs";
      for (size_t i = 0; i < outs.size(); ++i) {
        Tensor want = read_pb(out_files[i]);
        if (want.dtype() == DType::U16 && outs[i].dtype() == DType::BF16) {
          want = Tensor::borrow(DType::BF16, want.shape(), want.data()).clone();
        }
        std::string d = compare(outs[i], want, g.outputs[i]->name);
        if (!d.empty()) return "wrong result: " + d;
      }
    }
    return "";
  } catch (const Error &e) {
    std::string w = e.what();
    return (e.kind() == ErrorKind::User ? "unsupported: " : "internal error: ") + w.substr(0, 300);
  } catch (const std::exception &e) {
    return std::string("exception: ") + e.what();
  }
}

struct Running {
  pid_t pid;
  int fd;
  std::string name;
  std::chrono::steady_clock::time_point start;
};

std::string one_line(std::string s) {
  std::replace(s.begin(), s.end(), '\n', ' ');
  std::replace(s.begin(), s.end(), '\t', ' ');
  return s;
}

}  // namespace

int main(int argc, char **argv) {
  if (argc < 2 || !std::strcmp(argv[1], "--help")) {
    std::cout << "usage: kiln_node_tests ROOT [--filter SUBSTR] [--results FILE.tsv] [--expect FILE] [--jobs N] [-O N] [--target T]\n";
    return argc < 2 ? 2 : 0;
  }
  fs::path root = argv[1];
  std::string filter, results_path, expect_path;
  int jobs = 2, opt_level = 0;
  std::string target = "native";
  for (int i = 2; i + 1 < argc; i += 2) {
    std::string o = argv[i];
    if (o == "--filter") filter = argv[i + 1];
    else if (o == "--results") results_path = argv[i + 1];
    else if (o == "--expect") expect_path = argv[i + 1];
    else if (o == "--jobs") jobs = std::max(1, std::atoi(argv[i + 1]));
    else if (o == "-O") opt_level = std::atoi(argv[i + 1]);
    else if (o == "--target") target = argv[i + 1];
    else {
      std::cerr << "unknown option " << o << "\n";
      return 2;
    }
  }
  if (fs::exists(root / "node")) root /= "node";
  if (!fs::is_directory(root)) {
    std::cerr << "kiln_node_tests: no tests under " << root << " (run scripts/gen_conformance.sh)\n";
    return 2;
  }
  std::vector<std::string> tests;
  for (auto &e : fs::directory_iterator(root)) {
    std::string n = e.path().filename().string();
    if (e.is_directory() && n.rfind("test_", 0) == 0 && n.find(filter) != std::string::npos) tests.push_back(n);
  }
  std::sort(tests.begin(), tests.end());
  std::set<std::string> expected;
  if (!expect_path.empty()) {
    std::ifstream f(expect_path);
    if (!f) {
      std::cerr << "kiln_node_tests: cannot read the expected-pass list " << expect_path << "\n";
      return 2;
    }
    std::string line;
    while (std::getline(f, line)) {
      if (!line.empty() && line[0] != '#') expected.insert(line);
    }
  }

  std::map<std::string, std::string> results;
  std::vector<Running> running;
  size_t next = 0;
  while (next < tests.size() || !running.empty()) {
    while (next < tests.size() && static_cast<int>(running.size()) < jobs) {
      int fds[2];
      if (pipe(fds) != 0) return 1;
      std::string name = tests[next++];
      pid_t pid = fork();
      if (pid == 0) {
        close(fds[0]);
        alarm(kTimeoutSeconds);
        std::string r = one_line(run_test(root / name, opt_level, target));
        if (write(fds[1], r.data(), r.size()) < 0) _exit(3);
        _exit(0);
      }
      close(fds[1]);
      running.push_back({pid, fds[0], name, std::chrono::steady_clock::now()});
    }
    int status = 0;
    pid_t done = waitpid(-1, &status, 0);
    auto it = std::find_if(running.begin(), running.end(), [&](const Running &r) { return r.pid == done; });
    if (it == running.end()) continue;
    std::string out;
    char buf[4096];
    ssize_t k;
    while ((k = read(it->fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(k));
    close(it->fd);
    if (WIFSIGNALED(status)) {
      int sig = WTERMSIG(status);
      out = sig == SIGALRM ? "timeout" : "crashed (signal " + std::to_string(sig) + ")";
    } else if (WEXITSTATUS(status) != 0) {
      out = "child exited with status " + std::to_string(WEXITSTATUS(status));
    }
    results[it->name] = out;
    std::cout << (out.empty() ? "PASS " : "FAIL ") << it->name << (out.empty() ? "" : "  " + out) << "\n" << std::flush;
    running.erase(it);
  }

  size_t passed = 0, failed = 0, regressions = 0;
  for (auto &[n, r] : results) {
    if (r.empty()) ++passed;
    else {
      ++failed;
      if (expected.count(n)) {
        ++regressions;
        std::cerr << "REGRESSION " << n << ": " << r << "\n";
      }
    }
  }
  if (!results_path.empty()) {
    std::ofstream f(results_path);
    for (auto &[n, r] : results) f << n << "\t" << (r.empty() ? "PASS" : "FAIL") << "\t" << r << "\n";
  }
  std::cout << "kiln_node_tests: " << passed << " of " << results.size() << " node tests pass\n";
  if (!expect_path.empty()) {
    std::cout << regressions << " regressions against " << expect_path << " (" << expected.size() << " expected)\n";
    return regressions ? 1 : 0;
  }
  return failed ? 1 : 0;
}
