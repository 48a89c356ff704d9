#include "codegen/codegen_llvm.h"

#include <llvm/IR/IRBuilder.h>
#include <llvm/IR/Intrinsics.h>
#include <llvm/IR/LLVMContext.h>
#include <llvm/IR/Module.h>
#include <llvm/IR/Verifier.h>
#include <llvm/Passes/PassBuilder.h>
#include <llvm/Support/raw_ostream.h>
#include <llvm/Target/TargetMachine.h>

#include <map>

#include "loop/printer.h"
#include "support/error.h"

namespace kiln {

namespace {

// Values visible in the current scope: loop variables, lets, dims, buffer pointers.
struct Scope {
  std::map<std::string, llvm::Value *> vars;
  std::map<std::string, std::pair<llvm::Value *, Type>> buffers;
};

class CodeGen {
 public:
  CodeGen(llvm::Module &m, const std::string &cpu, const std::string &features)
      : m_(m), ctx_(m.getContext()), b_(ctx_), cpu_(cpu), features_(features) {}

  void emit(const Kernel &k) {
    auto *ptr = b_.getPtrTy();
    auto *fty = llvm::FunctionType::get(b_.getVoidTy(), {ptr, ptr}, false);
    llvm::Function *f = llvm::Function::Create(fty, llvm::Function::ExternalLinkage, k.name, &m_);
    add_attrs(f);
    f->addParamAttr(0, llvm::Attribute::NoAlias);
    f->addParamAttr(1, llvm::Attribute::NoAlias);
    auto *entry = llvm::BasicBlock::Create(ctx_, "entry", f);
    b_.SetInsertPoint(entry);
    func_ = f;
    scope_ = Scope{};
    llvm::Value *bufs = f->getArg(0), *dims = f->getArg(1);
    for (size_t i = 0; i < k.buffers.size(); ++i) {
      llvm::Value *p = b_.CreateLoad(ptr, b_.CreateConstGEP1_64(ptr, bufs, i), k.buffers[i].name);
      scope_.buffers[k.buffers[i].name] = {p, k.buffers[i].type};
    }
    for (size_t i = 0; i < k.dims.size(); ++i) {
      scope_.vars[k.dims[i]] =
          b_.CreateLoad(b_.getInt64Ty(), b_.CreateConstGEP1_64(b_.getInt64Ty(), dims, i), k.dims[i]);
    }
    stmt(k.body);
    b_.CreateRetVoid();
    std::string err;
    llvm::raw_string_ostream os(err);
    if (llvm::verifyFunction(*f, &os)) {
      internal_error << "generated invalid LLVM IR for " << k.name << ": " << os.str() << "\n"
                     << to_string(k);
    }
  }

 private:
  void add_attrs(llvm::Function *f) {
    if (!cpu_.empty()) f->addFnAttr("target-cpu", cpu_);
    if (!features_.empty()) f->addFnAttr("target-features", features_);
    f->addFnAttr(llvm::Attribute::NoUnwind);
  }

  llvm::Type *ltype(Type t) {
    llvm::Type *e;
    if (t.code == Type::Float) {
      e = t.bits == 16 ? b_.getHalfTy() : t.bits == 32 ? b_.getFloatTy() : b_.getDoubleTy();
    } else if (t.code == Type::BFloat) {
      e = b_.getInt16Ty();  // stored as raw bits; arithmetic happens in f32
    } else {
      e = b_.getIntNTy(t.bits);
    }
    return t.lanes > 1 ? llvm::FixedVectorType::get(e, t.lanes) : e;
  }

  llvm::Value *lookup_var(const std::string &n) {
    auto it = scope_.vars.find(n);
    internal_assert(it != scope_.vars.end()) << "unbound variable '" << n << "'";
    return it->second;
  }
  std::pair<llvm::Value *, Type> lookup_buffer(const std::string &n) {
    auto it = scope_.buffers.find(n);
    internal_assert(it != scope_.buffers.end()) << "unknown buffer '" << n << "'";
    return it->second;
  }

  llvm::Value *expr(const Expr &e) {
    switch (e.node_type()) {
      case IRNodeType::IntImm: return llvm::ConstantInt::get(ltype(e.type()), e.as<IntImm>()->value, true);
      case IRNodeType::FloatImm: return llvm::ConstantFP::get(ltype(e.type()), e.as<FloatImm>()->value);
      case IRNodeType::Var: return lookup_var(e.as<Var>()->name);
      case IRNodeType::Add: return arith(e.as<Add>()->a, e.as<Add>()->b, IRNodeType::Add);
      case IRNodeType::Sub: return arith(e.as<Sub>()->a, e.as<Sub>()->b, IRNodeType::Sub);
      case IRNodeType::Mul: return arith(e.as<Mul>()->a, e.as<Mul>()->b, IRNodeType::Mul);
      case IRNodeType::Div: return divmod(e.as<Div>()->a, e.as<Div>()->b, false);
      case IRNodeType::Mod: return divmod(e.as<Mod>()->a, e.as<Mod>()->b, true);
      case IRNodeType::Min: return minmax(e.as<Min>()->a, e.as<Min>()->b, true);
      case IRNodeType::Max: return minmax(e.as<Max>()->a, e.as<Max>()->b, false);
      case IRNodeType::EQ: return cmp(e.as<EQ>()->a, e.as<EQ>()->b, IRNodeType::EQ);
      case IRNodeType::NE: return cmp(e.as<NE>()->a, e.as<NE>()->b, IRNodeType::NE);
      case IRNodeType::LT: return cmp(e.as<LT>()->a, e.as<LT>()->b, IRNodeType::LT);
      case IRNodeType::LE: return cmp(e.as<LE>()->a, e.as<LE>()->b, IRNodeType::LE);
      case IRNodeType::GT: return cmp(e.as<GT>()->a, e.as<GT>()->b, IRNodeType::GT);
      case IRNodeType::GE: return cmp(e.as<GE>()->a, e.as<GE>()->b, IRNodeType::GE);
      case IRNodeType::And: return b_.CreateAnd(expr(e.as<And>()->a), expr(e.as<And>()->b));
      case IRNodeType::Or: return b_.CreateOr(expr(e.as<Or>()->a), expr(e.as<Or>()->b));
      case IRNodeType::Not: return b_.CreateNot(expr(e.as<Not>()->a));
      case IRNodeType::Select: {
        auto *n = e.as<Select>();
        return b_.CreateSelect(expr(n->cond), expr(n->true_value), expr(n->false_value));
      }
      case IRNodeType::Cast: return cast(e.as<Cast>()->value, e.type());
      case IRNodeType::Load: return load(*e.as<Load>());
      case IRNodeType::Ramp: {
        auto *n = e.as<Ramp>();
        llvm::Value *base = expr(n->base), *stride = expr(n->stride);
        llvm::Value *v = llvm::UndefValue::get(ltype(e.type()));
        for (int i = 0; i < n->lanes; ++i) {
          llvm::Value *lane = i == 0 ? base
              : e.type().is_float() ? b_.CreateFAdd(base, b_.CreateFMul(stride, llvm::ConstantFP::get(stride->getType(), i)))
                                    : b_.CreateAdd(base, b_.CreateMul(stride, llvm::ConstantInt::get(stride->getType(), i)));
          v = b_.CreateInsertElement(v, lane, b_.getInt32(i));
        }
        return v;
      }
      case IRNodeType::Broadcast: {
        auto *n = e.as<Broadcast>();
        return b_.CreateVectorSplat(n->lanes, expr(n->value));
      }
      case IRNodeType::Call: return call(*e.as<Call>());
      case IRNodeType::Let: {
        auto *n = e.as<Let>();
        llvm::Value *v = expr(n->value);
        auto saved = scope_.vars;
        scope_.vars[n->name] = v;
        llvm::Value *r = expr(n->body);
        scope_.vars = saved;
        return r;
      }
      default: internal_error << "codegen: not an expression";
    }
    return nullptr;
  }

  llvm::Value *arith(const Expr &a, const Expr &b, IRNodeType op) {
    llvm::Value *x = expr(a), *y = expr(b);
    bool fl = a.type().is_float();
    switch (op) {
      case IRNodeType::Add: return fl ? b_.CreateFAdd(x, y) : b_.CreateAdd(x, y);
      case IRNodeType::Sub: return fl ? b_.CreateFSub(x, y) : b_.CreateSub(x, y);
      default: return fl ? b_.CreateFMul(x, y) : b_.CreateMul(x, y);
    }
  }

  llvm::Value *divmod(const Expr &a, const Expr &b, bool mod) {
    llvm::Value *x = expr(a), *y = expr(b);
    Type t = a.type();
    if (t.is_float()) return mod ? b_.CreateFRem(x, y) : b_.CreateFDiv(x, y);
    if (t.is_uint()) return mod ? b_.CreateURem(x, y) : b_.CreateUDiv(x, y);
    // Floor semantics: adjust the truncating result when signs differ and rem != 0.
    llvm::Value *zero = llvm::Constant::getNullValue(x->getType());
    llvm::Value *q = b_.CreateSDiv(x, y), *r = b_.CreateSRem(x, y);
    llvm::Value *adjust = b_.CreateAnd(b_.CreateICmpNE(r, zero),
                                       b_.CreateICmpNE(b_.CreateICmpSLT(r, zero), b_.CreateICmpSLT(y, zero)));
    if (mod) return b_.CreateSelect(adjust, b_.CreateAdd(r, y), r);
    return b_.CreateSelect(adjust, b_.CreateSub(q, llvm::ConstantInt::get(x->getType(), 1)), q);
  }

  llvm::Value *minmax(const Expr &a, const Expr &b, bool is_min) {
    llvm::Value *x = expr(a), *y = expr(b);
    Type t = a.type();
    llvm::Value *c;
    if (t.is_float()) {
      // NaN propagates from either operand (as numpy.minimum/maximum do). Spelled with
      // compares: x86 cannot select llvm.maximum on scalars in LLVM 16.
      llvm::Value *pick = is_min ? b_.CreateFCmpOLT(x, y) : b_.CreateFCmpOGT(x, y);
      llvm::Value *r = b_.CreateSelect(pick, x, y);
      return b_.CreateSelect(b_.CreateFCmpUNO(x, y), b_.CreateFAdd(x, y), r);
    }
    if (t.is_uint()) c = is_min ? b_.CreateICmpULT(x, y) : b_.CreateICmpUGT(x, y);
    else c = is_min ? b_.CreateICmpSLT(x, y) : b_.CreateICmpSGT(x, y);
    return b_.CreateSelect(c, x, y);
  }

  llvm::Value *cmp(const Expr &a, const Expr &b, IRNodeType op) {
    llvm::Value *x = expr(a), *y = expr(b);
    Type t = a.type();
    using P = llvm::CmpInst::Predicate;
    P p;
    if (t.is_float()) {
      switch (op) {
        case IRNodeType::EQ: p = P::FCMP_OEQ; break;
        case IRNodeType::NE: p = P::FCMP_UNE; break;
        case IRNodeType::LT: p = P::FCMP_OLT; break;
        case IRNodeType::LE: p = P::FCMP_OLE; break;
        case IRNodeType::GT: p = P::FCMP_OGT; break;
        default: p = P::FCMP_OGE; break;
      }
      return b_.CreateFCmp(p, x, y);
    }
    bool u = t.is_uint();
    switch (op) {
      case IRNodeType::EQ: p = P::ICMP_EQ; break;
      case IRNodeType::NE: p = P::ICMP_NE; break;
      case IRNodeType::LT: p = u ? P::ICMP_ULT : P::ICMP_SLT; break;
      case IRNodeType::LE: p = u ? P::ICMP_ULE : P::ICMP_SLE; break;
      case IRNodeType::GT: p = u ? P::ICMP_UGT : P::ICMP_SGT; break;
      default: p = u ? P::ICMP_UGE : P::ICMP_SGE; break;
    }
    return b_.CreateICmp(p, x, y);
  }

  llvm::Value *bf16_to_f32(llvm::Value *bits, int lanes) {
    llvm::Type *i32 = lanes > 1 ? static_cast<llvm::Type *>(llvm::FixedVectorType::get(b_.getInt32Ty(), lanes)) : b_.getInt32Ty();
    llvm::Type *f32 = lanes > 1 ? static_cast<llvm::Type *>(llvm::FixedVectorType::get(b_.getFloatTy(), lanes)) : b_.getFloatTy();
    llvm::Value *w = b_.CreateShl(b_.CreateZExt(bits, i32), llvm::ConstantInt::get(i32, 16));
    return b_.CreateBitCast(w, f32);
  }

  llvm::Value *f32_to_bf16(llvm::Value *f, int lanes) {
    llvm::Type *i32 = lanes > 1 ? static_cast<llvm::Type *>(llvm::FixedVectorType::get(b_.getInt32Ty(), lanes)) : b_.getInt32Ty();
    llvm::Type *i16 = lanes > 1 ? static_cast<llvm::Type *>(llvm::FixedVectorType::get(b_.getInt16Ty(), lanes)) : b_.getInt16Ty();
    llvm::Value *w = b_.CreateBitCast(f, i32);
    // Round to nearest even; NaNs stay quiet NaNs.
    llvm::Value *lsb = b_.CreateAnd(b_.CreateLShr(w, llvm::ConstantInt::get(i32, 16)), llvm::ConstantInt::get(i32, 1));
    llvm::Value *rounded = b_.CreateAdd(w, b_.CreateAdd(lsb, llvm::ConstantInt::get(i32, 0x7fff)));
    llvm::Value *nan = b_.CreateFCmpUNO(f, f);
    llvm::Value *qnan = b_.CreateOr(w, llvm::ConstantInt::get(i32, 0x400000));
    llvm::Value *r = b_.CreateSelect(nan, qnan, rounded);
    return b_.CreateTrunc(b_.CreateLShr(r, llvm::ConstantInt::get(i32, 16)), i16);
  }

  llvm::Value *cast(const Expr &v, Type to) {
    Type from = v.type();
    llvm::Value *x = expr(v);
    if (from == to) return x;
    int lanes = to.lanes;
    if (from.code == Type::BFloat) {
      x = bf16_to_f32(x, lanes);
      from = Type::f(32, lanes);
      if (from == to) return x;
    }
    if (to.code == Type::BFloat) {
      llvm::Value *f = cast_value(x, from, Type::f(32, lanes));
      return f32_to_bf16(f, lanes);
    }
    return cast_value(x, from, to);
  }

  llvm::Value *cast_value(llvm::Value *x, Type from, Type to) {
    if (from == to) return x;
    llvm::Type *lt = ltype(to);
    if (to.is_bool()) {
      if (from.is_float()) return b_.CreateFCmpUNE(x, llvm::Constant::getNullValue(x->getType()));
      return b_.CreateICmpNE(x, llvm::Constant::getNullValue(x->getType()));
    }
    if (from.is_float() && to.is_float()) return b_.CreateFPCast(x, lt);
    if (from.is_float()) {
      return to.is_uint() ? b_.CreateFPToUI(x, lt) : b_.CreateFPToSI(x, lt);
    }
    if (to.is_float()) {
      return (from.is_uint()) ? b_.CreateUIToFP(x, lt) : b_.CreateSIToFP(x, lt);
    }
    return b_.CreateIntCast(x, lt, from.is_int());
  }

  llvm::Value *element_ptr(llvm::Value *base, Type elem, llvm::Value *index) {
    return b_.CreateGEP(ltype(elem.element()), base, index);
  }

  llvm::Value *load(const Load &n) {
    auto [base, bt] = lookup_buffer(n.buffer);
    internal_assert(bt.element() == n.type.element())
        << "load of " << n.type.str() << " from buffer " << n.buffer << " of " << bt.str();
    Type t = n.type;
    if (t.lanes == 1) return b_.CreateLoad(ltype(t), element_ptr(base, bt, expr(n.index)));
    if (auto *r = n.index.as<Ramp>()) {
      if (is_const(r->stride, 1)) {
        return b_.CreateAlignedLoad(ltype(t), element_ptr(base, bt, expr(r->base)), llvm::MaybeAlign(1));
      }
    }
    llvm::Value *idx = expr(n.index), *v = llvm::UndefValue::get(ltype(t));
    for (int i = 0; i < t.lanes; ++i) {
      llvm::Value *ix = b_.CreateExtractElement(idx, b_.getInt32(i));
      v = b_.CreateInsertElement(v, b_.CreateLoad(ltype(t.element()), element_ptr(base, bt, ix)), b_.getInt32(i));
    }
    return v;
  }

  llvm::Value *math1(const char *fname32, const char *fname64, llvm::Value *x, Type t) {
    internal_assert(t.is_float() && t.lanes == 1) << fname32 << " on " << t.str();
    llvm::Type *ft = x->getType();
    const char *n = t.bits == 64 ? fname64 : fname32;
    llvm::Value *arg = x;
    if (t.bits == 16) arg = b_.CreateFPExt(x, b_.getFloatTy());
    llvm::FunctionCallee fn = m_.getOrInsertFunction(n, arg->getType(), arg->getType());
    llvm::Value *r = b_.CreateCall(fn, {arg});
    return t.bits == 16 ? b_.CreateFPTrunc(r, ft) : r;
  }

  llvm::Value *intrinsic(llvm::Intrinsic::ID id, std::vector<llvm::Value *> args) {
    llvm::Function *f = llvm::Intrinsic::getDeclaration(&m_, id, {args[0]->getType()});
    return b_.CreateCall(f, args);
  }

  llvm::Value *call(const Call &c) {
    const std::string &n = c.name;
    if (n == "stride_lanes") {
      // Every `stride`-th lane of a wide vector from lane `phase`: a shuffle.
      auto *phase = c.args[1].as<IntImm>(), *stride = c.args[2].as<IntImm>();
      internal_assert(phase && stride) << "stride_lanes needs constant phase and stride";
      std::vector<int> mask;
      for (int i = 0; i < c.type.lanes; ++i) mask.push_back(static_cast<int>(phase->value + i * stride->value));
      return b_.CreateShuffleVector(expr(c.args[0]), mask);
    }
    if (n == "interleave") {
      // interleave(a, b, half): lanes half * L/2 + j of a and b alternating, j < L/2.
      auto *half = c.args[2].as<IntImm>();
      internal_assert(half && c.type.lanes % 2 == 0) << "interleave needs a constant half and even lanes";
      std::vector<int> mask;
      const int h = c.type.lanes / 2;
      for (int j = 0; j < h; ++j) {
        mask.push_back(static_cast<int>(half->value) * h + j);
        mask.push_back(c.type.lanes + static_cast<int>(half->value) * h + j);
      }
      return b_.CreateShuffleVector(expr(c.args[0]), expr(c.args[1]), mask);
    }
    if (n == "prefetch") {
      // prefetch(Load of the first element, write): the cache line of that element, for
      // reading (0) or writing (1); no value (an index 0).
      auto *ld = c.args[0].as<Load>();
      auto *rw = c.args[1].as<IntImm>();
      internal_assert(ld && rw && ld->type.lanes == 1) << "prefetch needs a scalar Load and a constant write flag";
      auto [base, bt] = lookup_buffer(ld->buffer);
      llvm::Value *p = element_ptr(base, bt, expr(ld->index));
      llvm::Function *f = llvm::Intrinsic::getDeclaration(&m_, llvm::Intrinsic::prefetch, {p->getType()});
      b_.CreateCall(f, {p, b_.getInt32(rw->value ? 1 : 0), b_.getInt32(3), b_.getInt32(1)});
      return llvm::ConstantInt::get(ltype(c.type), 0);
    }
    std::vector<llvm::Value *> a;
    for (auto &e : c.args) a.push_back(expr(e));
    Type t = c.args.empty() ? c.type : c.args[0].type();
    using I = llvm::Intrinsic::ID;
    static const std::map<std::string, I> kIntrinsics = {
        {"sqrt", llvm::Intrinsic::sqrt},   {"exp", llvm::Intrinsic::exp},
        {"log", llvm::Intrinsic::log},     {"floor", llvm::Intrinsic::floor},
        {"ceil", llvm::Intrinsic::ceil},   {"abs_f", llvm::Intrinsic::fabs},
        {"round", llvm::Intrinsic::roundeven}, {"trunc", llvm::Intrinsic::trunc},
        {"sin", llvm::Intrinsic::sin},     {"cos", llvm::Intrinsic::cos},
        {"pow", llvm::Intrinsic::pow},     {"fma", llvm::Intrinsic::fma},
    };
    if (n == "abs") {
      if (t.is_float()) return intrinsic(llvm::Intrinsic::fabs, {a[0]});
      if (t.is_uint()) return a[0];
      return b_.CreateBinaryIntrinsic(llvm::Intrinsic::abs, a[0], b_.getFalse());
    }
    if (n == "isnan") return b_.CreateFCmpUNO(a[0], a[0]);
    if (n == "isinf") {
      return b_.CreateFCmpOEQ(intrinsic(llvm::Intrinsic::fabs, {a[0]}),
                              llvm::ConstantFP::getInfinity(a[0]->getType()));
    }
    if (n == "shl") return b_.CreateShl(a[0], a[1]);
    if (n == "shr") return t.is_int() ? b_.CreateAShr(a[0], a[1]) : b_.CreateLShr(a[0], a[1]);
    if (n == "bit_and") return b_.CreateAnd(a[0], a[1]);
    if (n == "bit_or") return b_.CreateOr(a[0], a[1]);
    if (n == "bit_xor") return b_.CreateXor(a[0], a[1]);
    if (n == "bit_not") return b_.CreateNot(a[0]);
    if (n == "reinterpret") return b_.CreateBitCast(a[0], ltype(c.type));  // same-width bits
    if (n == "bf16_trunc") {
      // float -> bfloat16 by dropping the low mantissa bits (ONNX Cast's reference).
      llvm::Value *f = a[0];
      if (t.bits == 64) f = b_.CreateFPTrunc(f, b_.getFloatTy());
      llvm::Value *w = b_.CreateBitCast(f, b_.getInt32Ty());
      return b_.CreateTrunc(b_.CreateLShr(w, b_.getInt32(16)), b_.getInt16Ty());
    }
    if (n == "trunc_div") return t.is_uint() ? b_.CreateUDiv(a[0], a[1]) : b_.CreateSDiv(a[0], a[1]);
    if (n == "trunc_mod") {
      if (t.is_float()) return b_.CreateFRem(a[0], a[1]);
      return t.is_uint() ? b_.CreateURem(a[0], a[1]) : b_.CreateSRem(a[0], a[1]);
    }
    auto it = kIntrinsics.find(n);
    if (it != kIntrinsics.end()) {
      internal_assert(t.is_float()) << n << " on " << t.str();
      if (n == "sin" || n == "cos" || n == "exp" || n == "log" || n == "pow") {
        // Route through libm for accuracy identical to the reference implementations.
        if (n == "pow") {
          llvm::Value *x = a[0], *y = a[1];
          if (t.bits == 16) { x = b_.CreateFPExt(x, b_.getFloatTy()); y = b_.CreateFPExt(y, b_.getFloatTy()); }
          const char *fname = t.bits == 64 ? "pow" : "powf";
          llvm::FunctionCallee fn = m_.getOrInsertFunction(fname, x->getType(), x->getType(), x->getType());
          llvm::Value *r = b_.CreateCall(fn, {x, y});
          return t.bits == 16 ? b_.CreateFPTrunc(r, a[0]->getType()) : r;
        }
        std::string f32 = n + "f";
        return math1(f32.c_str(), n.c_str(), a[0], t);
      }
      return intrinsic(it->second, a);
    }
    static const std::map<std::string, std::pair<const char *, const char *>> kLibm = {
        {"tanh", {"tanhf", "tanh"}}, {"erf", {"erff", "erf"}},     {"tan", {"tanf", "tan"}},
        {"asin", {"asinf", "asin"}}, {"acos", {"acosf", "acos"}},  {"atan", {"atanf", "atan"}},
        {"sinh", {"sinhf", "sinh"}}, {"cosh", {"coshf", "cosh"}},  {"asinh", {"asinhf", "asinh"}},
        {"acosh", {"acoshf", "acosh"}}, {"atanh", {"atanhf", "atanh"}}, {"log1p", {"log1pf", "log1p"}},
        {"expm1", {"expm1f", "expm1"}},
    };
    auto lt = kLibm.find(n);
    internal_assert(lt != kLibm.end()) << "unknown intrinsic '" << n << "'";
    return math1(lt->second.first, lt->second.second, a[0], t);
  }

  void stmt(const Stmt &s) {
    if (!s.defined()) return;
    switch (s.node_type()) {
      case IRNodeType::Store: {
        auto *n = s.as<Store>();
        auto [base, bt] = lookup_buffer(n->buffer);
        llvm::Value *v = expr(n->value);
        Type vt = n->value.type();
        if (vt.is_bool() && !bt.is_bool()) {
          v = b_.CreateZExt(v, ltype(bt.with_lanes(vt.lanes)));
          vt = bt.with_lanes(vt.lanes);
        }
        internal_assert(vt.element() == bt.element())
            << "store of " << vt.str() << " into buffer " << n->buffer << " of " << bt.str();
        if (vt.lanes == 1) {
          b_.CreateStore(v, element_ptr(base, bt, expr(n->index)));
        } else if (auto *r = n->index.as<Ramp>(); r && is_const(r->stride, 1)) {
          b_.CreateAlignedStore(v, element_ptr(base, bt, expr(r->base)), llvm::MaybeAlign(1));
        } else {
          llvm::Value *idx = expr(n->index);
          for (int i = 0; i < vt.lanes; ++i) {
            b_.CreateStore(b_.CreateExtractElement(v, b_.getInt32(i)),
                           element_ptr(base, bt, b_.CreateExtractElement(idx, b_.getInt32(i))));
          }
        }
        return;
      }
      case IRNodeType::For: {
        auto *n = s.as<For>();
        auto *mn = n->min.as<IntImm>(), *ex = n->extent.as<IntImm>();
        if (n->kind == ForKind::Parallel) {
          parallel_for(*n);
        } else if (n->kind == ForKind::Unrolled && mn && ex) {
          // Unrolled here rather than left to LLVM, so register tiles indexed by the loop
          // variable have constant indices (promoted to registers by SROA).
          auto saved = scope_.vars;
          for (int64_t i = 0; i < ex->value; ++i) {
            scope_.vars[n->name] = b_.getInt64(mn->value + i);
            stmt(n->body);
          }
          scope_.vars = saved;
        } else {
          serial_for(n->name, expr(n->min), expr(n->extent), n->body);
        }
        return;
      }
      case IRNodeType::LetStmt: {
        auto *n = s.as<LetStmt>();
        llvm::Value *v = expr(n->value);
        auto saved = scope_.vars;
        scope_.vars[n->name] = v;
        stmt(n->body);
        scope_.vars = saved;
        return;
      }
      case IRNodeType::Block:
        for (auto &st : s.as<Block>()->stmts) stmt(st);
        return;
      case IRNodeType::IfThenElse: {
        auto *n = s.as<IfThenElse>();
        llvm::Value *c = expr(n->cond);
        auto *then_bb = llvm::BasicBlock::Create(ctx_, "then", func_);
        auto *else_bb = llvm::BasicBlock::Create(ctx_, "else", func_);
        auto *after = llvm::BasicBlock::Create(ctx_, "endif", func_);
        b_.CreateCondBr(c, then_bb, else_bb);
        b_.SetInsertPoint(then_bb);
        stmt(n->then_case);
        b_.CreateBr(after);
        b_.SetInsertPoint(else_bb);
        stmt(n->else_case);
        b_.CreateBr(after);
        b_.SetInsertPoint(after);
        return;
      }
      case IRNodeType::Allocate: {
        auto *n = s.as<Allocate>();
        llvm::Value *ptr;
        bool heap = true;
        if (auto *c = n->size.as<IntImm>(); c && c->value * n->type.bits / 8 <= 4096) {
          // Stack scratch in the entry block so mem2reg/SROA can promote it.
          llvm::IRBuilder<> eb(&func_->getEntryBlock(), func_->getEntryBlock().begin());
          ptr = eb.CreateAlloca(ltype(n->type.element()), eb.getInt64(c->value), n->buffer);
          heap = false;
        } else {
          // Kernel scratch (runtime/scratch.h): blocks cached per thread, not malloc's.
          llvm::FunctionCallee mal = m_.getOrInsertFunction("kiln_scratch_alloc", b_.getPtrTy(), b_.getInt64Ty());
          llvm::Value *bytes = b_.CreateMul(expr(n->size), b_.getInt64(std::max(1, n->type.bits / 8)));
          ptr = b_.CreateCall(mal, {b_.CreateAdd(bytes, b_.getInt64(64))});
        }
        auto saved = scope_.buffers;
        scope_.buffers[n->buffer] = {ptr, n->type};
        stmt(n->body);
        scope_.buffers = saved;
        if (heap) {
          llvm::FunctionCallee fr = m_.getOrInsertFunction("kiln_scratch_free", b_.getVoidTy(), b_.getPtrTy());
          b_.CreateCall(fr, {ptr});
        }
        return;
      }
      default: internal_error << "codegen: not a statement";
    }
  }

  void serial_for(const std::string &name, llvm::Value *min, llvm::Value *extent, const Stmt &body) {
    llvm::BasicBlock *pre = b_.GetInsertBlock();
    auto *header = llvm::BasicBlock::Create(ctx_, name + ".loop", func_);
    auto *bodybb = llvm::BasicBlock::Create(ctx_, name + ".body", func_);
    auto *exit = llvm::BasicBlock::Create(ctx_, name + ".exit", func_);
    llvm::Value *end = b_.CreateAdd(min, extent);
    b_.CreateBr(header);
    b_.SetInsertPoint(header);
    llvm::PHINode *phi = b_.CreatePHI(b_.getInt64Ty(), 2, name);
    phi->addIncoming(min, pre);
    b_.CreateCondBr(b_.CreateICmpSLT(phi, end), bodybb, exit);
    b_.SetInsertPoint(bodybb);
    auto saved = scope_.vars;
    scope_.vars[name] = phi;
    stmt(body);
    scope_.vars = saved;
    llvm::Value *next = b_.CreateAdd(phi, b_.getInt64(1), "", true, true);
    phi->addIncoming(next, b_.GetInsertBlock());
    b_.CreateBr(header);
    b_.SetInsertPoint(exit);
  }

  // Outlines the loop body into `void body(ptr closure, i64 begin, i64 end)` and calls
  // kiln_parallel_for(body, closure, min, extent). Everything in scope is captured.
  void parallel_for(const For &n) {
    std::vector<std::pair<std::string, llvm::Value *>> vars(scope_.vars.begin(), scope_.vars.end());
    std::vector<std::tuple<std::string, llvm::Value *, Type>> bufs;
    for (auto &[name, pv] : scope_.buffers) bufs.emplace_back(name, pv.first, pv.second);
    std::vector<llvm::Type *> fields;
    for (auto &v : vars) fields.push_back(v.second->getType());
    for (size_t i = 0; i < bufs.size(); ++i) fields.push_back(b_.getPtrTy());
    llvm::StructType *st = llvm::StructType::get(ctx_, fields);

    llvm::IRBuilder<> eb(&func_->getEntryBlock(), func_->getEntryBlock().begin());
    llvm::Value *closure = eb.CreateAlloca(st);
    for (size_t i = 0; i < vars.size(); ++i) b_.CreateStore(vars[i].second, b_.CreateStructGEP(st, closure, i));
    for (size_t i = 0; i < bufs.size(); ++i) {
      b_.CreateStore(std::get<1>(bufs[i]), b_.CreateStructGEP(st, closure, vars.size() + i));
    }

    auto *i64 = b_.getInt64Ty();
    auto *bty = llvm::FunctionType::get(b_.getVoidTy(), {b_.getPtrTy(), i64, i64}, false);
    std::string bname = func_->getName().str() + "." + n.name + ".par" + std::to_string(outlined_++);
    llvm::Function *bf = llvm::Function::Create(bty, llvm::Function::InternalLinkage, bname, &m_);
    add_attrs(bf);

    llvm::Function *saved_func = func_;
    Scope saved_scope = scope_;
    llvm::BasicBlock *saved_bb = b_.GetInsertBlock();
    func_ = bf;
    b_.SetInsertPoint(llvm::BasicBlock::Create(ctx_, "entry", bf));
    scope_ = Scope{};
    llvm::Value *cl = bf->getArg(0);
    for (size_t i = 0; i < vars.size(); ++i) {
      scope_.vars[vars[i].first] = b_.CreateLoad(fields[i], b_.CreateStructGEP(st, cl, i), vars[i].first);
    }
    for (size_t i = 0; i < bufs.size(); ++i) {
      llvm::Value *p = b_.CreateLoad(b_.getPtrTy(), b_.CreateStructGEP(st, cl, vars.size() + i));
      scope_.buffers[std::get<0>(bufs[i])] = {p, std::get<2>(bufs[i])};
    }
    llvm::Value *begin = bf->getArg(1), *end = bf->getArg(2);
    serial_for(n.name, begin, b_.CreateSub(end, begin), n.body);
    b_.CreateRetVoid();
    func_ = saved_func;
    scope_ = saved_scope;
    b_.SetInsertPoint(saved_bb);

    llvm::FunctionCallee pf = m_.getOrInsertFunction(
        "kiln_parallel_for", b_.getVoidTy(), b_.getPtrTy(), b_.getPtrTy(), i64, i64);
    llvm::Value *mn = expr(n.min);
    b_.CreateCall(pf, {bf, closure, mn, b_.CreateAdd(mn, expr(n.extent))});
  }

  llvm::Module &m_;
  llvm::LLVMContext &ctx_;
  llvm::IRBuilder<> b_;
  std::string cpu_, features_;
  llvm::Function *func_ = nullptr;
  Scope scope_;
  int outlined_ = 0;
};

}  // namespace

void emit_kernels(llvm::Module &m, const std::vector<Kernel> &kernels, const std::string &cpu,
                  const std::string &features) {
  CodeGen cg(m, cpu, features);
  for (auto &k : kernels) cg.emit(k);
}

void optimize_module(llvm::Module &m, llvm::TargetMachine &tm, int opt_level) {
  llvm::LoopAnalysisManager lam;
  llvm::FunctionAnalysisManager fam;
  llvm::CGSCCAnalysisManager cgam;
  llvm::ModuleAnalysisManager mam;
  llvm::PassBuilder pb(&tm);
  pb.registerModuleAnalyses(mam);
  pb.registerCGSCCAnalyses(cgam);
  pb.registerFunctionAnalyses(fam);
  pb.registerLoopAnalyses(lam);
  pb.crossRegisterProxies(lam, fam, cgam, mam);
  llvm::OptimizationLevel level = opt_level <= 0   ? llvm::OptimizationLevel::O1
                                  : opt_level == 1 ? llvm::OptimizationLevel::O1
                                  : opt_level == 2 ? llvm::OptimizationLevel::O2
                                                   : llvm::OptimizationLevel::O3;
  llvm::ModulePassManager mpm = pb.buildPerModuleDefaultPipeline(level);
  mpm.run(m, mam);
}

}  // namespace kiln
