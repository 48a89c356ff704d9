// Graph passes. Each is one function over a Graph; the pipeline for each opt level is a
// plain list of calls in compiler/pipeline.cpp.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "graph/graph.h"

namespace kiln {

// Removes Identity-like nodes (Identity, Dropout in inference) by rewiring their users.
// Graph outputs produced by such nodes are kept (the node stays).
void remove_identities(Graph &g);

// Infers dtype and (symbolic) shape of every value, minting symbols for data-dependent
// dims. Also propagates symbolic contents of small integer tensors (Shape, Gather,
// Concat, ...) so reshapes computed from shapes stay symbolic. Recurses into subgraphs.
// Pre: g verified. Post: every node output has a dtype; shapes where inferable.
void infer_shapes(Graph &g);

// Evaluates nodes whose inputs are all constants, replacing their outputs with constants,
// within a memory budget (outputs larger than `max_bytes` stay computed at run time).
// Works in rounds: every round evaluates all currently foldable nodes with one call of
// `eval` (one compiled module), so chains of N shape computations cost N rounds.
using NodeEvaluator = std::function<std::vector<std::vector<Tensor>>(
    const std::vector<const Node *> &, const std::vector<std::vector<Tensor>> &)>;
void fold_constants(Graph &g, const NodeEvaluator &eval, size_t max_bytes = size_t{64} << 20);

// Removes nodes whose outputs are unused (and unused initializers).
void eliminate_dead_code(Graph &g);

// ---- -O1 -------------------------------------------------------------------------------

// Folds an inference BatchNormalization with constant parameters into the Conv that
// feeds it (scaled weights, new bias), when the Conv's output has no other use.
void fold_batchnorm(Graph &g);

// Conv/MatMul/Gemm with a constant weight, followed by per-channel bias adds, one
// residual Add and one activation (Relu, LeakyRelu, Clip, HardSigmoid, HardSwish, Sigmoid, SiLU, Gelu),
// becomes one FusedConv / FusedMatMul node; Gemm's transposed constant B is transposed
// at compile time. Only f32.
void fuse_epilogues(Graph &g);

// Trees of f32 elementwise nodes (unary ops, Add/Sub/Mul/Div/Pow/PRelu/Max/Min, Clip)
// whose intermediates have the result's shape and no other reader become one
// FusedElementwise evaluating the whole expression per element
// (passes/fuse_elementwise.cpp). Inputs may broadcast (constants, per-channel operands).
// Meant to run after fuse_epilogues. Post: the absorbed nodes are gone.
void fuse_elementwise(Graph &g);

// ---- -O2 -------------------------------------------------------------------------------

// The weights of FusedConvs that run as GEMMs, packed for register tiles of `mr` rows
// (see pack_weights.cpp); marks the node with `packed_mr`. Convs with at most 64 output
// pixels (static) and a multiple of `nw` output channels run the GEMM transposed: weights in
// column panels of nw, `packed_nr`.
// NCHWc blocked activations for regions of depthwise and 1x1 convs (blocked_layout.cpp);
// b = channels per block (the target's f32 vector lanes).
void blocked_layout(Graph &g, int b);

// A blocked depthwise conv with the 1x1 conv reading it (and the 1x1 conv feeding it, when
// it is the only reader) as one BlockedSeparableConv, on maps tall enough for bands of rows
// (fuse_separable.cpp).
void fuse_separable_convs(Graph &g);

// Batch splitting (-O2 and above, batch_split.cpp): N when every graph input has batch
// N > 1 on dim 0, every node that depends on the inputs treats the samples independently
// and the graph has convs -- the pipeline then compiles it for one sample and
// CompiledModel::run runs the samples one after another. 0 otherwise.
int64_t batch_split_factor(const Graph &g);

// With a split batch, where the samples may rejoin: the earliest value through which all of
// the graph's data flows (one live value) after which every conv / matmul reads at least as
// many weight bytes as one sample's activations (ResNet-50: layer3.0's output). Null when
// there is none. The pipeline inserts a SampleGather there: the nodes before it run per
// sample, the rest on the whole batch.
const Value *batch_split_cut(const Graph &g);
// Inserts SampleGather {samples = n} after batch_split_cut(g), readers of the cut value moved
// to its output; returns the number of nodes before it (0: no cut, the graph unchanged).
size_t insert_sample_gather(Graph &g, int64_t n);

void pack_conv_weights(Graph &g, int mr, int nw);
// The constant 2-D weights of FusedMatMuls at least `nw` wide, stored as column panels of
// nw (one contiguous K x nw block per tile column), the columns past the last whole panel
// row-major after them; marks `packed_nr`.
void pack_matmul_weights(Graph &g, int nw);
// The transformed weights of WinogradConvs with at most 64 tiles per image and a multiple
// of `nw` output channels, in column panels of nw for the transposed GEMMs; `packed_nr`.
void pack_winograd_weights(Graph &g, int nw);

// ---- -O3 -------------------------------------------------------------------------------

// FusedConv 3x3, stride 1, one group, with at least 16 output tiles of 4x4 and 8 channels
// each way -> WinogradConv with the weights transformed to F(4x4, 3x3) at compile time.
void winograd_convs(Graph &g);

// ---- -O1: pattern fusion (passes/fuse_patterns.cpp) -------------------------------------

// Rewrites PyTorch's decomposed LayerNorm over the last axis (ReduceMean, Sub, Pow,
// ReduceMean, Add eps, Sqrt, Div, then optional constant scale Mul and bias Add) to one
// LayerNormalization, and the decomposed exact GELU (x * 0.5 * (1 + Erf(x / sqrt 2)), in
// the orders torch exports) to one Gelu. Only f32; only where no intermediate value is
// read outside the pattern. Post: the replaced nodes are gone; constants they alone
// read are left to eliminate_dead_code.
void fuse_normalizations(Graph &g);

// Rewrites scaled dot-product attention -- MatMul(Q, K^T), an optional scalar scale and
// additive mask, Softmax over the last axis, MatMul with V -- to one FusedAttention,
// folding the Transposes around Q, K, V and the result into the node's permutations
// (passes/fuse_attention.cpp). Only f32; only where no intermediate is read outside the
// pattern. Post: the absorbed nodes are gone; values they alone read are left to
// eliminate_dead_code.
void fuse_attention(Graph &g);

}  // namespace kiln
