#!/usr/bin/python3
"""End-to-end tests of how the kiln CLI treats bad input.

Every case builds its bad model / data in a fresh temp dir (onnx Python API + NumPy), runs
`kiln run` and/or `kiln inspect` on it and asserts that kiln
  - exits with status 2 (not 1 = internal error, not killed by a signal, no timeout),
  - prints exactly one line on stderr, starting with `kiln: error:`,
  - names the problem in that line (a case-insensitive keyword check),
  - never says "internal error".
Cases about huge sizes run kiln under an address-space limit (RLIMIT_AS, 4 GiB) and also
reject an "out of memory" message: kiln must refuse them before allocating.
Finally `kiln --help` and `kiln run|inspect|bench --help` must exit 0.

Usage: /usr/bin/python3 tests/e2e/bad_inputs.py KILN_BIN [--filter SUBSTR] [--list] [-v]
Prints PASS/FAIL per case and exits non-zero if any case fails.
Set KILN_E2E_NO_RLIMIT=1 for sanitizer builds (ASan needs a huge address space).
"""
import argparse
import os
import random
import resource
import shlex
import signal
import subprocess
import sys
import tempfile
import time
import traceback

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

MEM_LIMIT = 4 << 30  # bytes of address space for the "must not allocate" cases
TIMEOUT_S = 60
OPSET = 13

CASES = []


def case(fn):
    CASES.append(fn)
    return fn


class Failure(Exception):
    pass


class Skip(Exception):
    pass


# ---------------------------------------------------------------------------------------
# Model builders

def relu_model(shape=(2, 3), dtype=TensorProto.FLOAT, initializers=(), nodes=None,
               inputs=None, outputs=None):
    """y = Relu(x) by default; callers may swap in their own nodes/initializers."""
    if nodes is None:
        nodes = [helper.make_node("Relu", ["x"], ["y"], name="relu0")]
    if inputs is None:
        inputs = [helper.make_tensor_value_info("x", dtype, list(shape))]
    if outputs is None:
        outputs = [helper.make_tensor_value_info("y", dtype, list(shape))]
    g = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(initializers))
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", OPSET)],
                          producer_name="kiln-e2e")
    m.ir_version = 8
    return m


def add_const_model(init):
    """y = x + W where W is the given (possibly broken) initializer named 'W'."""
    nodes = [helper.make_node("Add", ["x", "W"], ["y"], name="add0")]
    return relu_model(shape=(4,), nodes=nodes, initializers=[init])


def save(model, path):
    # SerializeToString does not validate: broken models are written as they are.
    with open(path, "wb") as f:
        f.write(model.SerializeToString())
    return path


def write_npy(path, arr):
    np.save(path, arr)
    return path


# ---------------------------------------------------------------------------------------
# Running kiln and checking the result

class Ctx:
    def __init__(self, kiln, tmp, verbose):
        self.kiln, self.tmp, self.verbose = kiln, tmp, verbose
        self.checks = 0

    def path(self, name):
        return os.path.join(self.tmp, name)

    def good_model(self):
        p = self.path("good.onnx")
        if not os.path.exists(p):
            save(relu_model(), p)
        return p

    def good_input(self):
        p = self.path("x.npy")
        if not os.path.exists(p):
            write_npy(p, np.arange(6, dtype=np.float32).reshape(2, 3) - 2)
        return p

    def kiln_cmd(self, args, limit_mem=False):
        def preexec():
            if limit_mem and os.environ.get("KILN_E2E_NO_RLIMIT") != "1":
                resource.setrlimit(resource.RLIMIT_AS, (MEM_LIMIT, MEM_LIMIT))
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        cmd = [self.kiln] + list(args)
        if self.verbose:
            print("    $ " + " ".join(shlex.quote(c) for c in cmd), flush=True)
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, errors="replace",
                               timeout=TIMEOUT_S, preexec_fn=preexec, cwd=self.tmp)
        except subprocess.TimeoutExpired:
            raise Failure(f"`kiln {' '.join(args)}` did not finish in {TIMEOUT_S}s")
        if self.verbose:
            for line in r.stderr.splitlines():
                print("    stderr: " + line)
        return r

    def expect_error(self, args, keywords, limit_mem=False, forbid=()):
        """kiln ARGS must fail cleanly: exit 2, one stderr line `kiln: error: ...` that
        contains one of `keywords` (case-insensitive) and none of `forbid`."""
        if isinstance(keywords, str):
            keywords = [keywords]
        self.checks += 1
        r = self.kiln_cmd(args, limit_mem)
        what = f"`kiln {' '.join(os.path.basename(a) if os.sep in a else a for a in args)}`"
        err = r.stderr
        if r.returncode < 0:
            sig = -r.returncode
            name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else sig
            raise Failure(f"{what} was killed by signal {name}; stderr: {err.strip()[-300:]!r}")
        lines = err.splitlines()
        if "internal error" in err.lower():
            raise Failure(f"{what} reported an internal error: {err.strip()[-300:]!r}")
        if r.returncode != 2:
            raise Failure(f"{what} exited {r.returncode}, expected 2; stderr: {err.strip()[-300:]!r}")
        if len(lines) != 1:
            raise Failure(f"{what} printed {len(lines)} stderr lines, expected exactly 1: "
                          f"{err[-400:]!r}")
        line = lines[0]
        if not line.startswith("kiln: error:"):
            raise Failure(f"{what}: stderr line does not start with 'kiln: error:': {line!r}")
        low = line.lower()
        if not any(k.lower() in low for k in keywords):
            raise Failure(f"{what}: message does not name the problem (want one of "
                          f"{keywords}): {line!r}")
        for f in forbid:
            if f.lower() in low:
                raise Failure(f"{what}: message contains {f!r}: {line!r}")
        return line

    def expect_model_error(self, model_path, keywords, limit_mem=False, forbid=()):
        """Both `kiln inspect MODEL` and `kiln run MODEL` must reject the model."""
        self.expect_error(["inspect", model_path], keywords, limit_mem, forbid)
        return self.expect_error(["run", model_path], keywords, limit_mem, forbid)

    def expect_ok(self, args, stdout_has=None):
        self.checks += 1
        r = self.kiln_cmd(args)
        what = f"`kiln {' '.join(args)}`"
        if r.returncode != 0:
            raise Failure(f"{what} exited {r.returncode}, expected 0; stderr: {r.stderr.strip()[-300:]!r}")
        if stdout_has and stdout_has.lower() not in r.stdout.lower():
            raise Failure(f"{what}: stdout lacks {stdout_has!r}: {r.stdout[:200]!r}")
        return r


# ---------------------------------------------------------------------------------------
# Model-file cases

MODEL_FILE_KW = ["not a valid onnx", "protobuf", "parse"]


@case
def truncated_model_file(c):
    w = numpy_helper.from_array(np.linspace(-1, 1, 4096, dtype=np.float32).reshape(4096), "W")
    m = relu_model(shape=(4096,), nodes=[helper.make_node("Add", ["x", "W"], ["y"])],
                   initializers=[w])
    data = m.SerializeToString()
    p = c.path("truncated.onnx")
    with open(p, "wb") as f:
        f.write(data[: len(data) // 2])
    c.expect_model_error(p, MODEL_FILE_KW)


@case
def random_bytes(c):
    p = c.path("random.onnx")
    with open(p, "wb") as f:
        f.write(random.Random(1234).randbytes(8192))
    c.expect_model_error(p, MODEL_FILE_KW)


@case
def empty_file(c):
    p = c.path("empty.onnx")
    open(p, "wb").close()
    c.expect_model_error(p, ["empty"])


@case
def missing_model_file(c):
    c.expect_model_error(c.path("does_not_exist.onnx"), ["no such file", "does_not_exist"])


@case
def model_is_a_directory(c):
    d = c.path("adir.onnx")
    os.makedirs(d, exist_ok=True)
    c.expect_model_error(d, ["directory"])


@case
def negative_dim_initializer(c):
    t = helper.make_tensor("W", TensorProto.FLOAT, [4], [1.0, 2.0, 3.0, 4.0])
    t.dims[0] = -4
    c.expect_model_error(save(add_const_model(t), c.path("negdim.onnx")), ["negative"])


@case
def huge_dims_initializer(c):
    # 1e6 x 1e6 x 1e6 float32 = 4e18 bytes, backed by 4 bytes of data. Under a 4 GiB
    # address-space limit kiln must report the mismatch without trying to allocate.
    t = helper.make_tensor("W", TensorProto.FLOAT, [1], [1.0])
    del t.dims[:]
    t.dims.extend([1000000, 1000000, 1000000])
    t.ClearField("float_data")
    t.raw_data = np.float32(1).tobytes()
    m = add_const_model(t)
    c.expect_model_error(save(m, c.path("huge.onnx")), ["bytes", "too many", "exceeds", "needs"],
                         limit_mem=True, forbid=["out of memory"])


@case
def huge_dims_overflow_initializer(c):
    # numel overflows 64 bits: must be a clean error, not a wrap-around to a small size.
    t = helper.make_tensor("W", TensorProto.FLOAT, [1], [1.0])
    del t.dims[:]
    t.dims.extend([1 << 40, 1 << 40, 1 << 40])
    t.ClearField("float_data")
    t.raw_data = np.float32(1).tobytes()
    c.expect_model_error(save(add_const_model(t), c.path("overflow.onnx")),
                         ["too many", "bytes", "exceeds", "needs"], limit_mem=True,
                         forbid=["out of memory"])


@case
def huge_external_data_sparse(c):
    # A real (sparse) 32 GiB external file matching a huge shape: kiln must refuse it by
    # its size limit rather than allocating.
    d = c.path("hugeext")
    os.makedirs(d, exist_ok=True)
    n = 8 << 30  # floats: 32 GiB
    ext = os.path.join(d, "w.bin")
    with open(ext, "wb") as f:
        f.truncate(n * 4)
    if os.stat(ext).st_blocks * 512 > (1 << 20):  # the temp file system is not sparse
        os.remove(ext)
        raise Skip("temp file system does not support sparse files")
    t = helper.make_tensor("W", TensorProto.FLOAT, [1], [1.0])
    del t.dims[:]
    t.dims.append(n)
    t.ClearField("float_data")
    t.data_location = TensorProto.EXTERNAL
    e = t.external_data.add()
    e.key, e.value = "location", "w.bin"
    m = relu_model(shape=(n,), nodes=[helper.make_node("Add", ["x", "W"], ["y"])],
                   initializers=[t])
    c.expect_model_error(save(m, os.path.join(d, "m.onnx")), ["limit", "exceeds", "too large"],
                         limit_mem=True, forbid=["out of memory"])


@case
def data_shorter_than_shape_raw(c):
    t = helper.make_tensor("W", TensorProto.FLOAT, [4], [1.0, 2.0, 3.0, 4.0])
    t.ClearField("float_data")
    t.raw_data = np.array([1, 2], dtype=np.float32).tobytes()  # 8 bytes, shape needs 16
    c.expect_model_error(save(add_const_model(t), c.path("short_raw.onnx")), ["bytes", "needs"])


@case
def data_shorter_than_shape_typed(c):
    t = helper.make_tensor("W", TensorProto.FLOAT, [4], [1.0, 2.0, 3.0, 4.0])
    del t.float_data[2:]  # 2 values, shape needs 4
    c.expect_model_error(save(add_const_model(t), c.path("short_typed.onnx")),
                         ["elements", "needs"])


@case
def unknown_op(c):
    nodes = [helper.make_node("FrobnicateTensor", ["x"], ["y"], name="frob")]
    c.expect_model_error(save(relu_model(nodes=nodes), c.path("unknown_op.onnx")),
                         ["FrobnicateTensor"])


@case
def undefined_input_value(c):
    nodes = [helper.make_node("Add", ["x", "ghost_value"], ["y"], name="add0")]
    c.expect_model_error(save(relu_model(nodes=nodes), c.path("undefined.onnx")),
                         ["ghost_value"])


@case
def graph_cycle(c):
    nodes = [helper.make_node("Add", ["x", "b"], ["a"], name="n_add"),
             helper.make_node("Relu", ["a"], ["b"], name="n_relu"),
             helper.make_node("Identity", ["b"], ["y"], name="n_out")]
    c.expect_model_error(save(relu_model(nodes=nodes), c.path("cycle.onnx")), ["cycle"])


def external_model(c, folder, location, make_file=None):
    os.makedirs(folder, exist_ok=True)
    t = helper.make_tensor("W", TensorProto.FLOAT, [4], [1.0, 2.0, 3.0, 4.0])
    t.ClearField("float_data")
    t.data_location = TensorProto.EXTERNAL
    for k, v in (("location", location), ("offset", "0"), ("length", "16")):
        e = t.external_data.add()
        e.key, e.value = k, v
    if make_file:  # the file really exists, so only the path rule can reject it
        with open(make_file, "wb") as f:
            f.write(np.array([1, 2, 3, 4], dtype=np.float32).tobytes())
    return save(add_const_model(t), os.path.join(folder, "model.onnx"))


@case
def external_data_dotdot(c):
    folder = c.path("ext_dotdot/model_dir")
    p = external_model(c, folder, "../secret.bin", make_file=c.path("ext_dotdot/secret.bin"))
    c.expect_model_error(p, [".."])


@case
def external_data_absolute(c):
    secret = c.path("abs_secret.bin")
    p = external_model(c, c.path("ext_abs"), secret, make_file=secret)
    c.expect_model_error(p, ["absolute"])


@case
def external_data_symlink_escape(c):
    # A relative location that is a symlink pointing outside the model's folder.
    folder = c.path("ext_link")
    secret = c.path("link_secret.bin")
    p = external_model(c, folder, "w.bin", make_file=secret)
    os.symlink(secret, os.path.join(folder, "w.bin"))
    c.expect_model_error(p, ["outside"])


@case
def external_data_missing_file(c):
    p = external_model(c, c.path("ext_missing"), "nothere.bin")
    c.expect_model_error(p, ["nothere.bin", "does not exist"])


# ---------------------------------------------------------------------------------------
# Run-time input cases

@case
def wrong_input_dtype(c):
    x = write_npy(c.path("x_f64.npy"), np.zeros((2, 3), dtype=np.float64))
    c.expect_error(["run", c.good_model(), "--input", f"x={x}"], ["dtype", "f64", "float64"])


@case
def wrong_input_shape(c):
    x = write_npy(c.path("x_3x2.npy"), np.zeros((3, 2), dtype=np.float32))
    c.expect_error(["run", c.good_model(), "--input", f"x={x}"], ["shape"])


@case
def wrong_input_rank(c):
    x = write_npy(c.path("x_6.npy"), np.zeros((6,), dtype=np.float32))
    c.expect_error(["run", c.good_model(), "--input", f"x={x}"], ["shape", "rank"])


@case
def missing_npy_file(c):
    c.expect_error(["run", c.good_model(), "--input", f"x={c.path('nope.npy')}"],
                   ["nope.npy"])


@case
def malformed_npy(c):
    p = c.path("garbage.npy")
    with open(p, "wb") as f:
        f.write(b"this is not a numpy file at all\n" * 4)
    c.expect_error(["run", c.good_model(), "--input", f"x={p}"], ["npy"])


@case
def truncated_npy_data(c):
    p = write_npy(c.path("trunc.npy"), np.zeros((2, 3), dtype=np.float32))
    with open(p, "r+b") as f:
        f.truncate(os.path.getsize(p) - 8)
    c.expect_error(["run", c.good_model(), "--input", f"x={p}"], ["shorter", "truncated"])


@case
def npy_header_huge_shape(c):
    # A 128-byte .npy whose header claims 1e9 x 1e9 floats: must not allocate 4 EB.
    p = c.path("huge_hdr.npy")
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': (1000000000, 1000000000), }"
    header += " " * ((64 - (10 + len(header) + 1) % 64) % 64) + "\n"
    with open(p, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode()
                + b"\0" * 16)
    c.expect_error(["run", c.good_model(), "--input", f"x={p}"],
                   ["limit", "too large", "exceeds", "shorter", "truncated"],
                   limit_mem=True, forbid=["out of memory"])


@case
def npy_header_negative_shape(c):
    p = c.path("neg_hdr.npy")
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, -3), }"
    header += " " * ((64 - (10 + len(header) + 1) % 64) % 64) + "\n"
    with open(p, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode()
                + b"\0" * 24)
    c.expect_error(["run", c.good_model(), "--input", f"x={p}"], ["shape", "negative"],
                   limit_mem=True)


@case
def input_name_not_in_model(c):
    c.expect_error(["run", c.good_model(), "--input", f"no_such_input={c.good_input()}"],
                   ["no_such_input"])


@case
def shape_name_not_in_model(c):
    c.expect_error(["run", c.good_model(), "--shape", "no_such_input=2x3"], ["no_such_input"])


# ---------------------------------------------------------------------------------------
# CLI cases

@case
def unknown_cli_option(c):
    c.expect_error(["run", c.good_model(), "--frobnicate"], ["--frobnicate"])
    c.expect_error(["inspect", c.good_model(), "--frobnicate"], ["--frobnicate"])


@case
def bad_shape_syntax(c):
    for spec in ["x=2xx3", "x=2x-3", "x=abc", "x=", "x=2x3x"]:
        c.expect_error(["run", c.good_model(), "--shape", spec], ["shape"])
    c.expect_error(["run", c.good_model(), "--shape", "x2x3"], ["NAME=VALUE", "="])


@case
def huge_shape_flag(c):
    # A symbolic-batch model fixed to an absurd size: an error, not an allocation.
    m = relu_model(shape=("N", 3))
    p = save(m, c.path("sym.onnx"))
    c.expect_error(["run", p, "--shape", "x=99999999999x3"],
                   ["limit", "too large", "too many", "exceeds"],
                   limit_mem=True, forbid=["out of memory"])


@case
def option_missing_value(c):
    c.expect_error(["run", c.good_model(), "--input"], ["--input", "value"])


@case
def bad_input_syntax(c):
    c.expect_error(["run", c.good_model(), "--input", c.good_input()], ["NAME=VALUE", "="])


@case
def no_model_argument(c):
    c.expect_error(["run"], ["MODEL"])
    c.expect_error(["inspect"], ["MODEL"])


@case
def help_exits_zero(c):
    c.expect_ok(["--help"], "usage")
    c.expect_ok(["run", "--help"], "usage")
    c.expect_ok(["inspect", "--help"], "usage")
    c.expect_ok(["bench", "--help"], "usage")


@case
def bench_bad_flags(c):
    c.expect_error(["bench", c.good_model(), "--iterations", "0"], ["--iterations"])
    c.expect_error(["bench", c.good_model(), "--threads", "many"], ["--threads"])
    c.expect_error(["bench", c.good_model(), "--frobnicate"], ["--frobnicate"])
    c.expect_ok(["bench", c.good_model(), "--iterations", "2", "--warmup", "1", "--json"], "median_ms")


@case
def target_and_optimization_flags(c):
    # Unknown targets and malformed counts are one-line errors; the optimized paths, the
    # AVX2 target, profiling and the kernel cache switch all run.
    c.expect_error(["run", c.good_model(), "--target", "sparc"], ["target", "sparc"])
    c.expect_error(["bench", c.good_model(), "--target", "x86-64-v9"], ["target", "x86-64-v9"])
    c.expect_error(["run", c.good_model(), "--repeat", "0"], ["--repeat"])
    c.expect_error(["run", c.good_model(), "--repeat", "lots"], ["--repeat"])
    c.expect_ok(["run", c.good_model(), "-O3", "--repeat", "3", "--no-cache"], "y")
    c.expect_ok(["run", c.good_model(), "--target", "x86-64-v3"], "y")
    c.expect_ok(["bench", c.good_model(), "--iterations", "2", "--warmup", "0", "--profile"], "profile")
    c.expect_ok(["inspect", c.good_model(), "--shape", "x=2x3"], "memory")


@case
def split_batch_conv_net(c):
    # A conv net given a batch of 3 runs it sample by sample (split-batch): run, bench and
    # inspect fill and show the whole batch; an input of another batch size is an error.
    w = numpy_helper.from_array(np.full((4, 2, 3, 3), 0.1, dtype=np.float32), "w")
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["y"])]
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 2, 5, 5])]
    outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 4, 5, 5])]
    model = save(relu_model(nodes=nodes, inputs=inputs, outputs=outputs, initializers=[w]), c.path("conv.onnx"))
    c.expect_ok(["run", model, "--shape", "x=3x2x5x5"], "y: f32[3x4x5x5]")
    c.expect_ok(["bench", model, "--shape", "x=3x2x5x5", "--iterations", "2", "--json"], '"batch_split":3')
    c.expect_ok(["inspect", model, "--shape", "x=3x2x5x5"], "3 samples run one after another")
    c.expect_ok(["inspect", model, "--shape", "x=3x2x5x5", "-O1"], "x: f32[3, 2, 5, 5]")
    two = write_npy(c.path("x2.npy"), np.zeros((2, 2, 5, 5), dtype=np.float32))
    c.expect_error(["run", model, "--shape", "x=3x2x5x5", "--input", f"x={two}"], ["x", "2x2x5x5"])


@case
def good_model_runs(c):
    # Sanity: the harness's own good model and input work, so the failures above are
    # about the broken piece only.
    c.expect_ok(["run", c.good_model(), "--input", f"x={c.good_input()}"])
    c.expect_ok(["inspect", c.good_model()])


# ---------------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("kiln")
    ap.add_argument("--filter", default="")
    ap.add_argument("--list", action="store_true")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()
    if args.list:
        for fn in CASES:
            print(fn.__name__)
        return 0
    kiln = os.path.abspath(args.kiln)
    if not os.access(kiln, os.X_OK):
        print(f"bad_inputs: kiln binary {kiln} not found or not executable", file=sys.stderr)
        return 2
    failed, ran = [], 0
    t_all = time.time()
    with tempfile.TemporaryDirectory(prefix="kiln-e2e-") as tmp:
        for fn in CASES:
            name = fn.__name__
            if args.filter not in name:
                continue
            ran += 1
            sub = os.path.join(tmp, name)
            os.makedirs(sub)
            ctx = Ctx(kiln, sub, args.verbose)
            t0 = time.time()
            try:
                fn(ctx)
                print(f"PASS {name} ({ctx.checks} checks, {time.time() - t0:.2f}s)", flush=True)
            except Skip as e:
                print(f"SKIP {name}: {e}", flush=True)
            except Failure as e:
                failed.append(name)
                print(f"FAIL {name}: {e}", flush=True)
            except Exception:  # a bug in the harness itself: report, keep going
                failed.append(name)
                print(f"FAIL {name}: harness exception:\n{traceback.format_exc()}", flush=True)
    print(f"bad_inputs: {ran - len(failed)} of {ran} cases pass ({time.time() - t_all:.1f}s)")
    if failed:
        print("failing: " + " ".join(failed))
    return 1 if failed or ran == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
