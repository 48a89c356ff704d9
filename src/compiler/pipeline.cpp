#include <chrono>
#include <iostream>

#include "codegen/jit.h"
#include "compiler/compiler.h"
#include "graph/printer.h"
#include "lower/gemm.h"
#include "passes/passes.h"
#include "support/error.h"

namespace kiln {

namespace {

// Runs one pass with timing, verification and --print-after.
template <typename F>
void run_pass(const std::string &name, Model &m, const CompileOptions &o, F &&fn) {
  auto t0 = std::chrono::steady_clock::now();
  fn(*m.graph);
  verify_graph(*m.graph);
  double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  if (o.progress) std::cerr << "[kiln] pass " << name << ": " << ms << " ms\n";
  if (o.print_after == name || o.print_after == "all") {
    std::cerr << "// ---- after " << name << " ----\n" << print_model(m);
  }
}

void pin_input_shapes(Graph &g, const std::map<std::string, std::vector<int64_t>> &shapes) {
  for (auto &[name, dims] : shapes) {
    Value *in = nullptr;
    for (Value *v : g.inputs) {
      if (v->name == name) in = v;
    }
    user_assert(in) << "--shape names '" << name << "', which is not an input of the model";
    if (in->has_shape) {
      user_assert(in->shape.size() == dims.size())
          << "--shape " << name << " has rank " << dims.size() << " but the input has rank " << in->shape.size();
      for (size_t i = 0; i < dims.size(); ++i) {
        if (in->shape[i].is_const()) {
          user_assert(in->shape[i].value() == dims[i])
              << "--shape " << name << ": dim " << i << " is fixed to " << in->shape[i].value() << " by the model";
        }
      }
    }
    in->shape = shape_from(dims);
    in->has_shape = true;
  }
}

}  // namespace

void run_pipeline(Model &m, const CompileOptions &o, Jit &jit, const LowerOptions &target, CompileStats &stats) {
  pin_input_shapes(*m.graph, o.input_shapes);
  NodeEvaluator eval = [&](const std::vector<const Node *> &nodes, const std::vector<std::vector<Tensor>> &ins) {
    return evaluate_nodes(nodes, ins, jit);
  };
  size_t before = m.graph->nodes.size();
  // O0: cleanup, shapes, constants.
  run_pass("remove-identities", m, o, [](Graph &g) { remove_identities(g); });
  run_pass("infer-shapes", m, o, [](Graph &g) { infer_shapes(g); });
  if (o.opt_level >= 2 && o.split_batch) {
    // O2: a conv net on a batch runs sample by sample (batch_split.cpp): compiled for one.
    if (int64_t n = batch_split_factor(*m.graph)) {
      run_pass("split-batch", m, o, [](Graph &g) {
        for (Value *v : g.inputs) v->shape[0] = Dim(int64_t{1});
        infer_shapes(g);
      });
      stats.batch_split = n;
    }
  }
  run_pass("fold-constants", m, o, [&](Graph &g) { fold_constants(g, eval); });
  run_pass("dce", m, o, [](Graph &g) { eliminate_dead_code(g); });
  stats.folded = before - m.graph->nodes.size();
  if (o.opt_level >= 1) {
    // O1: algebraic folding and fusion.
    run_pass("fuse-normalizations", m, o, [](Graph &g) { fuse_normalizations(g); });
    run_pass("fuse-attention", m, o, [](Graph &g) { fuse_attention(g); });
    run_pass("fold-batchnorm", m, o, [](Graph &g) { fold_batchnorm(g); });
    run_pass("fuse-epilogues", m, o, [](Graph &g) { fuse_epilogues(g); });
    run_pass("fuse-elementwise", m, o, [](Graph &g) { fuse_elementwise(g); });
    run_pass("dce", m, o, [](Graph &g) { eliminate_dead_code(g); });
  }
  if (o.opt_level >= 3) {
    // O3: Winograd for 3x3 stride-1 convs.
    run_pass("winograd", m, o, [](Graph &g) { winograd_convs(g); });
    run_pass("dce", m, o, [](Graph &g) { eliminate_dead_code(g); });
  }
  if (o.opt_level >= 2) {
    // O2: NCHWc blocked activations for depthwise / 1x1 conv regions, their depthwise-
    // separable chains as one kernel each, then the weights packed for the target's GEMM
    // tiles (last: it needs the final convs).
    run_pass("blocked-layout", m, o, [&target](Graph &g) {
      blocked_layout(g, target.vector_lanes_f32());
      infer_shapes(g);
    });
    run_pass("fuse-separable", m, o, [](Graph &g) {
      fuse_separable_convs(g);
      infer_shapes(g);
    });
    GemmTile tile = gemm_tile_for(target);
    run_pass("pack-weights", m, o, [tile](Graph &g) {
      pack_conv_weights(g, tile.mr, tile.nv * tile.vl);
      pack_matmul_weights(g, tile.nv * tile.vl);
      pack_winograd_weights(g, tile.nv * tile.vl);
    });
    run_pass("dce", m, o, [](Graph &g) { eliminate_dead_code(g); });
    if (stats.batch_split > 1) {
      // O2: with a split batch, the samples rejoin where the weights outweigh one sample's
      // activations (batch_split.cpp): the nodes after the SampleGather run on the batch.
      run_pass("sample-gather", m, o, [&stats](Graph &g) {
        stats.split_prefix_nodes = insert_sample_gather(g, stats.batch_split);
        if (stats.split_prefix_nodes) infer_shapes(g);
      });
    }
  }
  stats.nodes = m.graph->nodes.size();
}

}  // namespace kiln
