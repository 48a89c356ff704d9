// Lowering: each op's compute definition, written once in the Loop IR. A lowering reads
// its operands (buffer name, dtype, shape as Exprs — constants where the graph knows them,
// runtime dims otherwise) and returns the naive, obviously-correct loop nest (the -O0
// schedule). Schedules transform that nest later; they never change what it computes.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "graph/graph.h"
#include "loop/ir.h"

namespace kiln {

struct Operand {
  std::string buf;            // buffer name inside the kernel
  DType dtype = DType::Undefined;
  std::vector<Expr> shape;    // i64 Exprs
  const Tensor *value = nullptr;  // contents known at compile time (or at specialization)
  bool present() const { return dtype != DType::Undefined; }
  int rank() const { return static_cast<int>(shape.size()); }
  Type storage() const { return type_of(dtype); }
  Type compute() const { return compute_type_of(dtype); }
};

// Thrown by LowerContext::value() when a lowering needs the contents of an input that is
// only known at run time; the compiler then specializes the kernel when it runs.
struct NeedsValue {
  int input;
};

// How a kernel is scheduled. opt_level 0 keeps the naive compute definitions (the
// reference every optimized schedule is checked against); >= 1 picks the optimized
// schedules (register-blocked GEMM tiles, ...) for a target with `vector_bits` wide
// registers.
struct LowerOptions {
  int opt_level = 0;
  int vector_bits = 256;
  int vector_registers = 16;  // architectural vector registers (32 with AVX-512 and on AArch64)
  int vector_lanes_f32() const { return vector_bits / 32; }
};

class LowerContext {
 public:
  LowerContext(const Node &n, std::vector<Operand> in, std::vector<Operand> out, LowerOptions opts = {})
      : node(n), in(std::move(in)), out(std::move(out)), opts(opts) {}
  const Node &node;
  std::vector<Operand> in, out;
  LowerOptions opts;

  bool has(size_t i) const { return i < in.size() && in[i].present(); }
  // Contents of input i; throws NeedsValue when unknown.
  const Tensor &value(size_t i) const;
  std::string fresh(const std::string &prefix);

 private:
  int counter_ = 0;
};

using LowerFn = Stmt (*)(LowerContext &);
LowerFn lower_fn_of(OpKind k);

#define KILN_OP(name, pattern, shape_fn, lower_fn) Stmt lower_fn(LowerContext &);
#define KILN_RUNTIME_OP(name, shape_fn, run_fn)
#define KILN_CONTROL_OP(name)
#include "graph/ops.def"
#undef KILN_OP
#undef KILN_RUNTIME_OP
#undef KILN_CONTROL_OP

// ---- building blocks for compute definitions -----------------------------------------

// Row-major flat offset of `idx` in a tensor of `shape`.
Expr flat_index(const std::vector<Expr> &shape, const std::vector<Expr> &idx);
// Index into an operand broadcast (numpy rules) to an output of rank idx.size().
std::vector<Expr> broadcast_index(const Operand &o, const std::vector<Expr> &out_idx);
Expr numel(const std::vector<Expr> &shape);

// Loads element `idx` of operand `o` converted to its compute type (f16/bf16 -> f32,
// bool -> bool).
Expr load(const Operand &o, const std::vector<Expr> &idx);
Expr load_flat(const Operand &o, Expr flat);
// Stores `v` (in compute type or storage type) to element `idx` of `o`.
Stmt store(const Operand &o, const std::vector<Expr> &idx, Expr v);
Stmt store_flat(const Operand &o, Expr flat, Expr v);

// A loop nest over `extents`; body receives the loop variables. Names are unique.
Stmt loop_nest(LowerContext &c, const std::vector<Expr> &extents,
               const std::function<Stmt(const std::vector<Expr> &)> &body,
               ForKind outer = ForKind::Serial);
// loop_nest whose first two loops (batch and channel) are fused into one parallel loop:
// batch alone is often 1, which would leave one thread busy.
Stmt parallel_loop_nest(LowerContext &c, const std::vector<Expr> &extents,
                        const std::function<Stmt(const std::vector<Expr> &)> &body);
// Reductions over a set of axes (`reduced[a]` for axis a): the full index from the loop
// variables of the kept axes (`outer`) and of the reduced axes (`inner`), in axis order;
// and the extents of the reduced (want = true) or kept (want = false) axes.
std::vector<Expr> merge_index(const std::vector<bool> &reduced, const std::vector<Expr> &outer,
                              const std::vector<Expr> &inner);
std::vector<Expr> extents_where(const Operand &x, const std::vector<bool> &reduced, bool want);
// Window ops (Conv, ConvTranspose, ConvInteger, QLinearConv): the weight's spatial dims,
// which must be static (user_error otherwise).
std::vector<int64_t> static_kernel_dims(const LowerContext &c, const Operand &w);
// out(idx) = f(idx) over the whole output: the elementwise compute definition.
Stmt compute(LowerContext &c, const Operand &out, const std::function<Expr(const std::vector<Expr> &)> &f);
// acc = init; for r in extents: acc = combine(acc, value(r)); then finish(acc) -- a
// reduction evaluated inside an enclosing loop body. Returns (stmt, acc-read Expr) via
// the continuation `use` that receives the final accumulator value.
Stmt reduce(LowerContext &c, Type acc_type, Expr init, const std::vector<Expr> &extents,
            const std::function<Expr(Expr acc, const std::vector<Expr> &r)> &update,
            const std::function<Stmt(Expr result)> &use);

}  // namespace kiln
