#include <nlohmann/json.hpp>

#include <cstdio>
#include <iostream>

#include "cli_args.h"
#include "commands.h"
#include "compiler/compiler.h"
#include "compiler/model_stats.h"
#include "model_source.h"
#include "graph/printer.h"
#include "onnx/importer.h"
#include "runtime/model_library.h"
#include "support/error.h"

namespace kiln {

namespace {

const char *kHelp =
    "usage: kiln inspect MODEL.onnx|MODEL.so [options]\n"
    "\n"
    "For a library from `kiln compile`: its target, the CPU features it needs, inputs,\n"
    "outputs and ops (--ir: its graph). For an ONNX model:\n"
    "Shows the model's inputs and outputs (with symbolic dims), parameter count, FLOPs,\n"
    "an op histogram and, for every op, whether kiln generates code for it (codegen),\n"
    "runs a C++ runtime kernel (runtime-kernel) or executes it as control flow.\n"
    "\n"
    "options:\n"
    "  --shape NAME=DIMS  fix an input's dims for FLOP counting (e.g. x=1x3x224x224)\n"
    "  -O0 .. -O3         optimization level to show (default -O3: fusion, memory plan, GEMM tiles)\n"
    "  --ir               print the Graph IR after passes and every kernel's Loop IR\n"
    "  --json             one JSON object on stdout, for programs\n"
    "  --help             this text\n";

nlohmann::json shape_json(const Value *v, const CompiledModel *cm = nullptr) {
  nlohmann::json s = nlohmann::json::array();
  if (!v->has_shape) return nullptr;
  for (auto &d : cm ? cm->caller_shape(*v) : v->shape) {
    if (d.is_const()) s.push_back(d.value());
    else s.push_back(d.str());
  }
  return s;
}

std::string human(double v) {
  const char *units[] = {"", "K", "M", "G", "T"};
  int u = 0;
  while (v >= 1000 && u < 4) {
    v /= 1000;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u ? "%.2f %s" : "%.0f%s", v, units[u]);
  return buf;
}

// A library from `kiln compile`: what it was built for and the graph it runs.
int inspect_library(const std::string &path, const Args &a) {
  for (const char *o : {"-O0", "-O1", "-O2", "-O3"}) {
    user_assert(!a.flag(o)) << o << " applies when compiling; '" << path << "' is an already compiled library";
  }
  user_assert(a.all("--shape").empty()) << "--shape applies when compiling; '" << path << "' is an already compiled library";
  LibraryContents lib = read_model_library(path);  // any architecture: nothing is loaded
  const ModelLibraryInfo &info = lib.payload.info;
  const Graph &g = *lib.payload.model.graph;
  std::map<std::string, int> ops;
  for (auto &n : g.nodes) ops[op_name(n->kind)]++;
  std::string features;
  for (auto &f : info.cpu_features) features += (features.empty() ? "" : ",") + f;
  if (a.flag("--json")) {
    nlohmann::json j = {{"model", path}, {"library", true}, {"kiln_version", info.kiln_version},
                        {"format_version", info.format_version}, {"target", info.target}, {"arch", info.arch},
                        {"cpu_features", info.cpu_features}, {"opt_level", info.opt_level}, {"source", info.source},
                        {"nodes", g.nodes.size()}};
    for (const Value *v : g.inputs) j["inputs"].push_back({{"name", v->name}, {"dtype", dtype_name(v->dtype)}, {"shape", shape_json(v)}});
    for (const Value *v : g.outputs) j["outputs"].push_back({{"name", v->name}, {"dtype", dtype_name(v->dtype)}, {"shape", shape_json(v)}});
    for (auto &[op, n] : ops) j["ops"].push_back({{"op", op}, {"count", n}});
    std::cout << j.dump() << "\n";
    return 0;
  }
  std::printf("library:    %s (kiln %s, format %u)\n", path.c_str(), info.kiln_version.c_str(), info.format_version);
  std::printf("compiled:   from %s at -O%d for %s (%s; needs %s)\n", info.source.c_str(), info.opt_level,
              info.target.c_str(), info.arch.c_str(), features.empty() ? "nothing special" : features.c_str());
  std::printf("inputs:\n");
  for (const Value *v : g.inputs) std::printf("  %s: %s%s\n", v->name.c_str(), dtype_name(v->dtype), shape_str(v->shape).c_str());
  std::printf("outputs:\n");
  for (const Value *v : g.outputs) std::printf("  %s: %s%s\n", v->name.c_str(), dtype_name(v->dtype), shape_str(v->shape).c_str());
  std::printf("nodes:      %zu\nops:\n", g.nodes.size());
  for (auto &[op, n] : ops) std::printf("  %-32s %d\n", op.c_str(), n);
  if (a.flag("--ir")) std::cout << "\n" << print_graph(g);
  return 0;
}

}  // namespace

int cmd_inspect(int argc, char **argv) {
  Args a = parse_args(argc, argv, 2, {"--shape"}, {"--ir", "--json", "--help", "-h", "-O0", "-O1", "-O2", "-O3"});
  if (a.flag("--help") || a.flag("-h")) {
    std::cout << kHelp;
    return 0;
  }
  user_assert(a.positional.size() == 1) << "inspect expects one MODEL argument (see kiln inspect --help)";
  const std::string &path = a.positional[0];
  if ((path.size() > 3 && path.compare(path.size() - 3, 3, ".so") == 0) || is_elf_file(path)) {
    return inspect_library(path, a);
  }
  CompileOptions opts = compile_options_from(a);
  Model m = load_onnx(a.positional[0]);
  std::map<std::string, int64_t> symbols;
  for (const Value *v : m.graph->inputs) {
    auto it = opts.input_shapes.find(v->name);
    if (it == opts.input_shapes.end() || !v->has_shape || v->shape.size() != it->second.size()) continue;
    for (size_t i = 0; i < v->shape.size(); ++i) {
      if (v->shape[i].kind() == Dim::Kind::Sym) symbols[v->shape[i].name()] = it->second[i];
    }
  }
  std::unique_ptr<CompiledModel> cm = CompiledModel::compile(std::move(m), opts);
  const Graph &g = cm->graph();
  // A split batch runs its one-sample nodes once per sample (all of them, or those before
  // the SampleGather where the samples rejoin): whole-batch figures.
  const int64_t split = cm->stats().batch_split;
  const size_t prefix = cm->stats().split_prefix_nodes;
  ModelStats st = compute_stats(g, symbols, split > 1 ? (prefix ? prefix : g.nodes.size()) : 0,
                                static_cast<double>(std::max<int64_t>(split, 1)));

  if (a.flag("--json")) {
    nlohmann::json j;
    j["model"] = a.positional[0];
    j["producer"] = cm->model().producer;
    j["opset"] = cm->model().opset;
    for (const Value *v : g.inputs) j["inputs"].push_back({{"name", v->name}, {"dtype", dtype_name(v->dtype)}, {"shape", shape_json(v, cm.get())}});
    for (const Value *v : g.outputs) j["outputs"].push_back({{"name", v->name}, {"dtype", dtype_name(v->dtype)}, {"shape", shape_json(v, cm.get())}});
    j["batch_split"] = split;
    j["batch_split_prefix_nodes"] = prefix;
    j["parameters"] = st.parameters;
    j["parameter_bytes"] = st.parameter_bytes;
    j["flops"] = st.flops;
    j["flops_symbolic_dims_as_1"] = st.flops_symbolic;
    j["nodes"] = cm->stats().nodes;
    j["kernels"] = cm->stats().kernels;
    for (auto &o : st.ops) j["ops"].push_back({{"op", o.op}, {"count", o.count}, {"path", exec_path_name(o.path)}});
    j["opt_level"] = opts.opt_level;
    j["bytes_moved"] = st.bytes_moved;
    j["bytes_moved_unfused"] = st.bytes_moved_unfused;
    if (auto mp = cm->static_memory_plan()) {
      j["memory"] = {{"arena_bytes", mp->arena_bytes}, {"intermediate_bytes", mp->total_bytes}, {"intermediates", mp->offsets.size()}};
    }
    for (auto &fg : st.groups) {
      j["fused_groups"].push_back({{"node", fg.node}, {"ops", fg.ops}, {"flops", fg.flops}, {"bytes", fg.bytes},
                                   {"bytes_unfused", fg.bytes_unfused}});
    }
    std::cout << j.dump() << "\n";
    return 0;
  }
  std::cout << "model:      " << a.positional[0] << "\n";
  std::cout << "producer:   " << (cm->model().producer.empty() ? "?" : cm->model().producer) << ", opset "
            << cm->model().opset << "\n";
  std::cout << "inputs:\n";
  for (const Value *v : g.inputs) {
    std::cout << "  " << v->name << ": " << dtype_name(v->dtype) << shape_str(cm->caller_shape(*v)) << "\n";
  }
  std::cout << "outputs:\n";
  for (const Value *v : g.outputs) {
    std::cout << "  " << v->name << ": " << dtype_name(v->dtype) << (v->has_shape ? shape_str(cm->caller_shape(*v)) : "[?]")
              << "\n";
  }
  if (split > 1) {
    if (prefix) {
      std::cout << "batch:      " << split << " samples run one after another through the first " << prefix << " of "
                << g.nodes.size() << " nodes, then together from the SampleGather on (split-batch)\n";
    } else {
      std::cout << "batch:      " << split << " samples run one after another (split-batch: kernels, memory plan and --ir "
                << "are for one sample)\n";
    }
  }
  std::cout << "parameters: " << human(static_cast<double>(st.parameters)) << " (" << st.parameter_bytes / (1024.0 * 1024.0)
            << " MiB)\n";
  std::cout << "FLOPs:      " << human(st.flops) << (st.flops_symbolic ? " (symbolic dims taken as 1; use --shape)" : "")
            << "\n";
  std::cout << "nodes:      " << cm->stats().nodes << " after -O" << opts.opt_level << " passes ("
            << cm->stats().folded << " folded away), " << cm->stats().kernels << " distinct kernels\n";
  std::cout << "ops:\n";
  for (auto &o : st.ops) {
    std::printf("  %-28s %6zu  %s\n", o.op.c_str(), o.count, exec_path_name(o.path));
  }
  const double MiB = 1024.0 * 1024.0;
  if (auto mp = cm->static_memory_plan()) {
    std::printf("memory:     arena %.2f MiB (static plan) for %zu intermediates of %.2f MiB in all\n",
                static_cast<double>(mp->arena_bytes) / MiB, mp->offsets.size(), static_cast<double>(mp->total_bytes) / MiB);
  } else {
    std::printf("memory:     planned at the first run of each input shape (symbolic dims; use --shape)\n");
  }
  std::printf("traffic:    %.2f MiB read+written per run; %.2f MiB without fusion (%.1f%% less)\n", st.bytes_moved / MiB,
              st.bytes_moved_unfused / MiB,
              st.bytes_moved_unfused > 0 ? 100 * (1 - st.bytes_moved / st.bytes_moved_unfused) : 0.0);
  if (!st.groups.empty()) {
    std::printf("fused groups (%zu):\n  %-10s %9s %11s %7s  %s\n", st.groups.size(), "MFLOPs", "MiB", "unfused MiB",
                "saved", "ops / node");
    for (auto &fg : st.groups) {
      std::printf("  %-10.1f %9.3f %11.3f %6.1f%%  %s  %s\n", fg.flops / 1e6, fg.bytes / MiB, fg.bytes_unfused / MiB,
                  100 * (1 - fg.bytes / fg.bytes_unfused), fg.ops.c_str(), fg.node.c_str());
    }
  }
  if (a.flag("--ir")) {
    std::cout << "\n// ==== Graph IR after -O" << opts.opt_level << " passes ====\n";
    PrintOptions po;
    po.elide_large_constants = true;
    std::cout << print_graph(g, po);
    std::cout << "\n// ==== Loop IR of each kernel ====\n";
    for (auto &k : cm->kernel_ir()) std::cout << k << "\n";
  }
  return 0;
}

}  // namespace kiln
