#!/usr/bin/python3
"""Tests of ahead-of-time model libraries (`kiln compile`) and libkiln_runtime.

  - libkiln_runtime.so links no LLVM/protobuf/ONNX and is at most 1 MiB stripped;
  - a library's outputs equal the JIT's bit for bit on the same target (native, and the
    AVX2 target when the CPU has it), for a real model and for a small dynamic-shape one
    run at two batch sizes;
  - examples/c and examples/cpp, linked against libkiln_runtime.so, produce the same bytes;
  - bad artifacts (truncated, foreign, empty, another architecture, CPU features the host
    lacks, another format version) and bad compile flags give exit 2 and one
    `kiln: error:` line naming the problem, never a crash.

  - libraries for aarch64-linux-gnu use NEON fmla micro-kernels and, run by the cross-built
    runtime under qemu-aarch64-static, match x86 within relative L2 1e-4 (ResNet-18,
    MobileNetV2).

Usage: /usr/bin/python3 tests/aot/aot_test.py BUILD_DIR [--aarch64-build DIR] [--filter SUBSTR] [-v]
"""
import argparse
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import traceback

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

MODELS = os.path.join(os.environ.get("KILN_CACHE", os.path.expanduser("~/.cache/kiln")), "models")
CASES = []


def case(fn):
    CASES.append(fn)
    return fn


class Failure(Exception):
    pass


class Skip(Exception):
    pass


class Env:
    def __init__(self, build, tmp, verbose, aarch64_build=None):
        self.build, self.tmp, self.verbose = build, tmp, verbose
        self.aarch64_build = aarch64_build
        self.kiln = os.path.join(build, "kiln")

    def path(self, name):
        return os.path.join(self.tmp, name)

    def run(self, args, env=None, timeout=600):
        e = dict(os.environ)
        e.update(env or {})
        if self.verbose:
            print("  $", " ".join(args))
        p = subprocess.run(args, capture_output=True, text=True, env=e, timeout=timeout)
        return p

    def ok(self, args, env=None):
        p = self.run(args, env)
        if p.returncode != 0:
            raise Failure(f"{' '.join(args)} exited {p.returncode}: {p.stderr.strip()[-400:]}")
        return p

    def user_error(self, args, keywords, env=None):
        p = self.run(args, env)
        lines = p.stderr.strip().splitlines()
        if p.returncode != 2:
            raise Failure(f"expected exit 2, got {p.returncode}; stderr: {p.stderr.strip()[-400:]}")
        if len(lines) != 1 or not lines[0].startswith("kiln: error:"):
            raise Failure(f"expected one 'kiln: error:' line, got: {p.stderr!r}")
        low = lines[0].lower()
        if not any(k.lower() in low for k in keywords):
            raise Failure(f"error does not name the problem ({keywords}): {lines[0]}")
        return lines[0]


def tiny_model(path):
    """x[batch, 16] -> MatMul(16x8) + bias -> Relu -> Softmax: symbolic batch."""
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal((16, 8)).astype(np.float32), "w")
    b = numpy_helper.from_array(rng.standard_normal(8).astype(np.float32), "b")
    nodes = [helper.make_node("MatMul", ["x", "w"], ["m"]), helper.make_node("Add", ["m", "b"], ["a"]),
             helper.make_node("Relu", ["a"], ["r"]), helper.make_node("Softmax", ["r"], ["y"], axis=-1)]
    g = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 16])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 8])], [w, b])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    onnx.save(m, path)
    return path


def model(name):
    p = os.path.join(MODELS, "torch", name)
    if not os.path.exists(p):
        raise Skip(f"{p} missing (scripts/fetch-models.sh)")
    return p


def host_has(flag):
    with open("/proc/cpuinfo") as f:
        return flag in f.read().split()


def same_outputs(env, model_path, lib, inputs, tag):
    """kiln run on the .onnx (JIT) and on the library: byte-identical .npy outputs."""
    a, b = env.path(tag + "_jit"), env.path(tag + "_lib")
    ins = []
    for name, arr in inputs.items():
        p = env.path(f"{tag}_{name}.npy")
        np.save(p, arr)
        ins += ["--input", f"{name}={p}"]
    env.ok([env.kiln, "run", model_path, *ins, "--output-dir", a] + (["--target", tag] if tag.startswith("x86") else []))
    env.ok([env.kiln, "run", lib, *ins, "--output-dir", b])
    for f in sorted(os.listdir(a)):
        x, y = np.load(os.path.join(a, f)), np.load(os.path.join(b, f))
        if x.shape != y.shape or x.tobytes() != y.tobytes():
            raise Failure(f"{f}: library output differs from the JIT (max |d| {np.abs(x - y).max()})")
    return np.load(os.path.join(a, sorted(os.listdir(a))[0]))


@case
def runtime_has_no_compiler_deps(env):
    lib = os.path.join(env.build, "libkiln_runtime.so")
    d = env.ok(["readelf", "-d", lib]).stdout
    needed = [l.split("[")[1].rstrip("]") for l in d.splitlines() if "(NEEDED)" in l]
    bad = [n for n in needed if any(k in n.lower() for k in ("llvm", "protobuf", "onnx", "clang"))]
    if bad:
        raise Failure(f"libkiln_runtime.so needs {bad}")
    stripped = env.path("libkiln_runtime.stripped.so")
    env.ok(["strip", "-o", stripped, lib])
    size = os.path.getsize(stripped)
    if size > 1 << 20:
        raise Failure(f"stripped libkiln_runtime.so is {size} bytes, above 1 MiB")
    syms = env.ok(["nm", "-D", "--defined-only", lib]).stdout
    for f in ("kiln_model_load", "kiln_model_run", "kiln_last_error", "kiln_set_num_threads", "kiln_model_input_info"):
        if f" {f}" not in syms:
            raise Failure(f"libkiln_runtime.so does not export {f}")


@case
def mobilenet_matches_jit_bit_for_bit(env):
    m = model("mobilenet_v2.onnx")
    lib = env.path("mobilenet_v2.so")
    env.ok([env.kiln, "compile", m, "-o", lib, "--shape", "input=1x3x224x224"])
    x = np.random.default_rng(1).standard_normal((1, 3, 224, 224)).astype(np.float32)
    y = same_outputs(env, m, lib, {"input": x}, "native")
    # The deployment examples, linked against libkiln_runtime.so, agree to the byte.
    raw_in, raw_out = env.path("x.raw"), env.path("y_c.raw")
    x.tofile(raw_in)
    for exe in ("run_model_c", "run_model_cpp"):
        env.ok([os.path.join(env.build, "examples", exe), lib, raw_in, raw_out])
        got = np.fromfile(raw_out, dtype=np.float32).reshape(y.shape)
        if got.tobytes() != y.tobytes():
            raise Failure(f"{exe} output differs from kiln run")


@case
def avx2_target_matches_jit(env):
    if not host_has("avx2"):
        raise Skip("no AVX2")
    m = tiny_model(env.path("tiny.onnx"))
    lib = env.path("tiny_avx2.so")
    env.ok([env.kiln, "compile", m, "-o", lib, "--target", "x86-64-v3", "--shape", "x=4x16"])
    x = np.random.default_rng(2).standard_normal((4, 16)).astype(np.float32)
    same_outputs(env, m, lib, {"x": x}, "x86-64-v3")


@case
def dynamic_batch_library(env):
    m = tiny_model(env.path("tiny.onnx"))
    lib = env.path("tiny_dyn.so")
    env.ok([env.kiln, "compile", m, "-o", lib])
    for batch in (1, 5):
        x = np.random.default_rng(batch).standard_normal((batch, 16)).astype(np.float32)
        y = same_outputs(env, m, lib, {"x": x}, f"dyn{batch}")
        if y.shape != (batch, 8):
            raise Failure(f"batch {batch}: output shape {y.shape}")
    env.user_error([env.kiln, "run", lib, "--shape", "x=2x16"], ["already compiled"])
    env.user_error([env.kiln, "run", lib, "-O0"], ["already compiled"])


@case
def bad_artifacts(env):
    m = tiny_model(env.path("tiny.onnx"))
    lib = env.path("tiny.so")
    env.ok([env.kiln, "compile", m, "-o", lib, "--shape", "x=2x16"])
    data = open(lib, "rb").read()

    def variant(name, content):
        p = env.path(name)
        with open(p, "wb") as f:
            f.write(content)
        return p

    checks = [
        (variant("truncated.so", data[: len(data) // 2]), ["truncated"]),
        (variant("empty.so", b""), ["not a kiln model library", "not an elf"]),
        (variant("text.so", b"hello, I am not a library\n" * 10), ["not a kiln model library", "not an elf"]),
    ]
    foreign = next((p for p in ("/lib/x86_64-linux-gnu/libm.so.6", "/usr/lib/x86_64-linux-gnu/libm.so.6")
                    if os.path.exists(p)), None)
    if foreign:
        checks.append((foreign, ["not a kiln model library"]))
    # Another architecture: the ELF header says aarch64 (e_machine at offset 18).
    checks.append((variant("arm.so", data[:18] + struct.pack("<H", 183) + data[20:]), ["aarch64"]))
    # Another model-data format version (the u32 after the magic).
    i = data.find(b"KILNLIB\0")
    if i < 0:
        raise Failure("no model data magic in the library")
    checks.append((variant("version.so", data[: i + 8] + struct.pack("<I", 999) + data[i + 12:]), ["version"]))
    for p, keys in checks:
        env.user_error([env.kiln, "run", p], keys)
    env.user_error([env.kiln, "inspect", checks[0][0]], ["truncated"])
    if foreign:
        env.user_error([env.kiln, "inspect", foreign], ["not a kiln model library"])
    # The C API refuses them the same way (no crash, message from kiln_last_error).
    for p, keys in checks[:2]:
        r = env.run([os.path.join(env.build, "examples", "run_model_c"), p])
        if r.returncode != 1 or "error:" not in r.stderr:
            raise Failure(f"run_model_c on {os.path.basename(p)}: exit {r.returncode}, {r.stderr!r}")
    # Code for CPU features the host lacks (KILN_CPU_DISABLE hides them from the runtime).
    if host_has("avx512f"):
        lib4 = env.path("tiny_v4.so")
        env.ok([env.kiln, "compile", m, "-o", lib4, "--target", "x86-64-v4", "--shape", "x=2x16"])
        env.user_error([env.kiln, "run", lib4], ["avx512f"], env={"KILN_CPU_DISABLE": "avx512f"})
        env.ok([env.kiln, "run", lib4])


def rel_l2(a, b):
    return float(np.linalg.norm(a.astype(np.float64) - b) / max(np.linalg.norm(b.astype(np.float64)), 1e-30))


@case
def aarch64_under_qemu(env):
    """Libraries for aarch64-linux-gnu, run by the cross-built runtime under qemu, match x86."""
    xb = env.aarch64_build
    runner = os.path.join(xb or "", "examples", "run_model_c")
    if not xb or not os.path.exists(runner):
        raise Skip("no cross-built runtime (cmake/aarch64-linux-gnu.cmake; scripts/test.sh builds build-aarch64)")
    for tool in ("qemu-aarch64-static", "aarch64-linux-gnu-objdump"):
        if not shutil.which(tool):
            raise Failure(f"{tool} is missing (scripts/install-deps.sh installs it)")
    rt = os.path.join(xb, "libkiln_runtime.so")
    needed = env.ok(["aarch64-linux-gnu-readelf", "-d", rt]).stdout
    if "llvm" in needed.lower() or "protobuf" in needed.lower():
        raise Failure("the aarch64 runtime links LLVM or protobuf")
    qemu_env = {"QEMU_LD_PREFIX": "/usr/aarch64-linux-gnu", "LD_LIBRARY_PATH": xb}
    for name in ("resnet18.onnx", "mobilenet_v2.onnx"):
        m = model(name)
        lib = env.path(name + ".aarch64.so")
        env.ok([env.kiln, "compile", m, "-o", lib, "--target", "aarch64-linux-gnu", "--shape", "input=1x3x224x224"])
        head = open(lib, "rb").read(20)
        if struct.unpack("<H", head[18:20])[0] != 183:
            raise Failure(f"{lib} is not an aarch64 ELF file")
        # NEON micro-kernels: 4-lane fused multiply-adds in the disassembly.
        dis = env.ok(["aarch64-linux-gnu-objdump", "-d", "--no-show-raw-insn", lib]).stdout
        fmla = sum(1 for l in dis.splitlines() if "fmla" in l and ".4s" in l)
        if fmla < 50:
            raise Failure(f"{name}: only {fmla} NEON fmla .4s instructions in the library")
        x = np.random.default_rng(7).standard_normal((1, 3, 224, 224)).astype(np.float32)
        xin, yout = env.path("arm_x.raw"), env.path("arm_y.raw")
        x.tofile(xin)
        env.ok(["qemu-aarch64-static", runner, lib, xin, yout], env=qemu_env)
        got = np.fromfile(yout, dtype=np.float32)
        np.save(env.path("arm_x.npy"), x)
        ref_dir = env.path("arm_ref_" + name)
        env.ok([env.kiln, "run", m, "--input", "input=" + env.path("arm_x.npy"), "--output-dir", ref_dir])
        ref = np.load(os.path.join(ref_dir, sorted(os.listdir(ref_dir))[0])).reshape(-1)
        err = rel_l2(got, ref)
        if env.verbose:
            print(f"  {name}: aarch64 vs x86 rel-L2 {err:.2e}, {fmla} fmla .4s")
        if got.shape != ref.shape or not err <= 1e-4:
            raise Failure(f"{name}: aarch64 output differs from x86 (rel-L2 {err:.3g})")
        # The x86 runtime refuses it with the reason; inspect reads it without loading it.
        env.user_error([env.kiln, "run", lib], ["aarch64"])
        info = json.loads(env.ok([env.kiln, "inspect", lib, "--json"]).stdout)
        if (info["target"], info["arch"], info["cpu_features"]) != ("aarch64-linux-gnu", "aarch64", ["neon"]):
            raise Failure(f"inspect of the aarch64 library says {info}")


@case
def bad_compile_flags(env):
    m = tiny_model(env.path("tiny.onnx"))
    env.user_error([env.kiln, "compile", m, "-o", env.path("x.so"), "--target", "riscv"], ["unknown target"])
    env.user_error([env.kiln, "compile", m], ["-o"])
    env.user_error([env.kiln, "compile", m, "-o", env.tmp], ["directory"])
    env.user_error([env.kiln, "compile", env.path("missing.onnx"), "-o", env.path("x.so")], ["missing.onnx"])
    env.user_error([env.kiln, "run", m, "--target", "aarch64-linux-gnu"], ["cannot run"])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--filter", default="")
    ap.add_argument("--aarch64-build", default=None, help="cross-built runtime (KILN_RUNTIME_ONLY build dir)")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()
    failed = 0
    with tempfile.TemporaryDirectory(prefix="kiln-aot-") as tmp:
        xb = os.path.abspath(args.aarch64_build) if args.aarch64_build else None
        env = Env(os.path.abspath(args.build), tmp, args.verbose, xb)
        for fn in CASES:
            if args.filter not in fn.__name__:
                continue
            try:
                fn(env)
                print(f"PASS {fn.__name__}")
            except Skip as e:
                print(f"SKIP {fn.__name__}: {e}")
            except Exception as e:  # noqa: BLE001 - report every failure
                failed += 1
                print(f"FAIL {fn.__name__}: {e}")
                if args.verbose or not isinstance(e, Failure):
                    traceback.print_exc()
    print(f"{failed} failed" if failed else "all passed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
