"""Tests of the kiln Python package (python/kiln, docs/PYTHON.md).

Run by tests/python/run_tests.sh BUILD_DIR, which pip-installs the package into
BUILD_DIR/pyenv and runs this file from outside the source tree, so the installed package
(with its own copies of libkiln.so and libkiln_runtime.so) is what gets imported.
KILN_CLI names the kiln command for the real-model case.
"""
import gc
import os
import subprocess
import sys

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import kiln

MODELS = os.path.join(os.environ.get("KILN_CACHE", os.path.expanduser("~/.cache/kiln")), "models")
RNG = np.random.default_rng(0)
W = RNG.standard_normal((8, 4)).astype(np.float32)
B = RNG.standard_normal(4).astype(np.float32)


def dense_model():
    """x[batch, 8] -> y = relu(x @ W + b) [batch, 4], c = concat(x, x) [2 * batch, 8]."""
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "W"], ["xw"]),
            helper.make_node("Add", ["xw", "b"], ["xwb"]),
            helper.make_node("Relu", ["xwb"], ["y"]),
            helper.make_node("Concat", ["x", "x"], ["c"], axis=0),
        ],
        "dense",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 8])],
        [
            helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4]),
            helper.make_tensor_value_info("c", TensorProto.FLOAT, None),
        ],
        [numpy_helper.from_array(W, "W"), numpy_helper.from_array(B, "b")],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def int_model():
    """i[n] int64 -> twice = i + i (int64), positive = i > 0 (bool)."""
    graph = helper.make_graph(
        [
            helper.make_node("Add", ["i", "i"], ["twice"]),
            helper.make_node("Greater", ["i", "zero"], ["positive"]),
        ],
        "ints",
        [helper.make_tensor_value_info("i", TensorProto.INT64, ["n"])],
        [
            helper.make_tensor_value_info("twice", TensorProto.INT64, ["n"]),
            helper.make_tensor_value_info("positive", TensorProto.BOOL, ["n"]),
        ],
        [numpy_helper.from_array(np.array(0, np.int64), "zero")],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def reference(x):
    return {"y": np.maximum(x @ W + B, 0), "c": np.concatenate([x, x])}


def check(outputs, x):
    assert list(outputs) == ["y", "c"]
    for name, want in reference(x).items():
        assert outputs[name].dtype == np.float32
        np.testing.assert_allclose(outputs[name], want, rtol=1e-5, atol=1e-6)


@pytest.fixture(scope="module")
def dense():
    return kiln.compile(dense_model().SerializeToString())


def test_installed_package_ships_its_libraries():
    if os.environ.get("KILN_LIBRARY_DIR"):
        pytest.skip("KILN_LIBRARY_DIR is set: libraries come from a build directory")
    lib_dir = os.path.join(os.path.dirname(kiln.__file__), "_lib")
    for name in ("libkiln.so", "libkiln_runtime.so"):
        assert os.path.isfile(os.path.join(lib_dir, name)), f"{name} missing in {lib_dir}"
    assert kiln.version()


def test_compile_from_path_and_bytes(tmp_path):
    path = tmp_path / "dense.onnx"
    onnx.save(dense_model(), str(path))
    x = RNG.standard_normal((3, 8)).astype(np.float32)
    for source in (str(path), path, path.read_bytes(), dense_model()):
        check(kiln.compile(source)(x=x), x)


def test_two_batch_sizes_and_call_styles(dense):
    for batch in (1, 7):
        x = RNG.standard_normal((batch, 8)).astype(np.float32)
        check(dense(x=x), x)
        check(dense(x), x)
        check(dense.run({"x": x}), x)


def test_metadata(dense):
    assert dense.target == "native"
    (x,) = dense.inputs
    assert (x.name, x.dtype, x.shape) == ("x", np.dtype(np.float32), ("batch", 8))
    y, c = dense.outputs
    assert (y.name, y.dtype, y.shape) == ("y", np.dtype(np.float32), ("batch", 4))
    assert c.name == "c" and c.shape[1] == 8
    assert isinstance(c.shape[0], str) and "batch" in c.shape[0]  # an expression over batch
    assert "x: float32['batch', 8]" in repr(dense)


def test_pinned_shapes():
    m = kiln.compile(dense_model(), shapes={"x": (2, 8)})
    assert m.inputs[0].shape == (2, 8)
    assert [o.shape for o in m.outputs] == [(2, 4), (4, 8)]
    x = RNG.standard_normal((2, 8)).astype(np.float32)
    check(m(x=x), x)


def test_output_buffers_preallocated_when_shapes_are_known(dense):
    x = np.zeros((5, 8), np.float32)
    y, c = dense._output_buffers({"x": x})
    assert y.shape == (5, 4) and y.dtype == np.float32  # batch is bound by x
    assert c is None  # "(batch + batch)": kiln allocates it, the package copies it


def test_integer_and_bool_dtypes():
    m = kiln.compile(int_model())
    assert [(t.name, t.dtype) for t in m.inputs + m.outputs] == [
        ("i", np.dtype(np.int64)),
        ("twice", np.dtype(np.int64)),
        ("positive", np.dtype(np.bool_)),
    ]
    i = np.array([-3, 0, 5, 2**40], np.int64)
    out = m(i=i)
    np.testing.assert_array_equal(out["twice"], i + i)
    np.testing.assert_array_equal(out["positive"], i > 0)
    np.testing.assert_array_equal(m(i=[1, 2])["twice"], [2, 4])  # lists and int32 convert
    np.testing.assert_array_equal(m(i=np.arange(3, dtype=np.int32))["twice"], [0, 2, 4])


def test_contiguous_input_is_not_copied(dense):
    x = RNG.standard_normal((4, 8)).astype(np.float32)
    passed = dense._as_input("x", x)
    assert passed is x and passed.ctypes.data == x.ctypes.data
    # In place even at an address that is not 16-byte aligned (kiln reads it where it is).
    storage = np.zeros(4 * 8 + 1, np.float32)
    odd = storage[1:].reshape(4, 8)
    odd[...] = x
    assert dense._as_input("x", odd).ctypes.data == storage.ctypes.data + 4
    check(dense(x=odd), x)


def test_other_inputs_are_converted(dense):
    x = RNG.standard_normal((4, 8)).astype(np.float32)
    wide = np.zeros((4, 16), np.float32)
    wide[:, ::2] = x
    strided = wide[:, ::2]
    fortran = np.asfortranarray(x)
    for arr in (strided, fortran, x.astype(np.float64), x.astype(">f4"), x.tolist()):
        passed = dense._as_input("x", arr)
        assert passed.flags.c_contiguous and passed.dtype == np.float32
        assert not isinstance(arr, np.ndarray) or not np.shares_memory(passed, arr)
        check(dense(x=arr), x)


def test_export_and_load(dense, tmp_path):
    x = RNG.standard_normal((3, 8)).astype(np.float32)
    path = str(tmp_path / "dense.so")
    assert dense.export(path) == path
    loaded = kiln.load(path)
    assert loaded.inputs == dense.inputs and loaded.outputs == dense.outputs
    assert loaded.target == dense.target
    a, b = dense(x=x), loaded(x=x)
    for name in a:
        np.testing.assert_array_equal(a[name], b[name])


def test_temporary_library_removed_with_module(tmp_path):
    m = kiln.compile(dense_model())
    temp = m._path
    kept = m.export(str(tmp_path / "kept.so"))
    assert os.path.exists(temp)
    del m
    gc.collect()
    assert not os.path.exists(temp) and not os.path.exists(os.path.dirname(temp))
    assert os.path.exists(kept)


def test_threads(dense):
    x = RNG.standard_normal((64, 8)).astype(np.float32)
    before = kiln.get_num_threads()
    try:
        kiln.set_num_threads(1)
        assert kiln.get_num_threads() == 1
        check(dense(x=x), x)
        kiln.set_num_threads(3)
        assert kiln.get_num_threads() == 3
        check(dense(x=x), x)
        with pytest.raises(kiln.KilnError, match="at least 1"):
            kiln.set_num_threads(0)
    finally:
        kiln.set_num_threads(before)


def raises(fn, *words):
    with pytest.raises(kiln.KilnError) as info:
        fn()
    message = str(info.value)
    assert isinstance(info.value, RuntimeError)
    assert message and "\n" not in message
    for word in words:
        assert word in message, f"{word!r} not in {message!r}"
    return message


def test_run_errors(dense):
    x = np.zeros((2, 8), np.float32)
    raises(lambda: dense(), "missing input 'x'")
    raises(lambda: dense(q=x), "no input named 'q'")
    raises(lambda: dense(x, x=x), "'x' is given twice")
    raises(lambda: dense(x, x), "takes 1 inputs")
    raises(lambda: dense(x=np.zeros((2, 5), np.float32)), "'x'", "shape")
    raises(lambda: dense(x=np.zeros(8, np.float32)), "'x'", "rank")
    raises(lambda: dense(x=np.zeros((2, 8), np.complex64)), "'x'", "complex64", "float32")
    raises(lambda: dense(x=np.zeros([1] * 9, np.float32)), "rank 9")
    ints = kiln.compile(int_model())
    raises(lambda: ints(i=np.zeros(3, np.float32)), "'i'", "float32", "int64")


def test_compile_and_load_errors(tmp_path):
    raises(lambda: kiln.compile(b"this is not an onnx model"), "not a valid ONNX model")
    raises(lambda: kiln.compile(str(tmp_path / "missing.onnx")), "missing.onnx")
    raises(lambda: kiln.compile(dense_model(), target="sparc"), "unknown target 'sparc'")
    raises(lambda: kiln.compile(dense_model(), opt_level=7), "opt_level")
    raises(lambda: kiln.compile(dense_model(), shapes={"nope": (1, 8)}), "'nope'")
    raises(lambda: kiln.compile(dense_model(), shapes={"x": (-1, 8)}), "bad dim")
    text = tmp_path / "notes.so"
    text.write_text("not a library\n")
    raises(lambda: kiln.load(str(text)), "not a kiln model library")
    raises(lambda: kiln.load(str(tmp_path / "missing.so")), "missing.so")
    with pytest.raises(TypeError):
        kiln.compile(12345)


def test_other_target_is_written_not_loaded(tmp_path):
    raises(lambda: kiln.compile(dense_model(), target="aarch64-linux-gnu"), "kiln.compile_library", "aarch64")
    path = str(tmp_path / "dense-arm.so")
    assert kiln.compile_library(dense_model(), path, target="aarch64-linux-gnu") == path
    with open(path, "rb") as f:
        header = f.read(20)
    assert header[:4] == b"\x7fELF" and int.from_bytes(header[18:20], "little") == 183  # EM_AARCH64
    raises(lambda: kiln.load(path), "aarch64")


def test_from_pytorch():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(),
        torch.nn.Linear(8, 5),
    ).eval()
    example = torch.randn(2, 3, 16, 16)
    m = kiln.from_pytorch(net, example, dynamic_axes={"input0": {0: "batch"}})
    assert [t.name for t in m.inputs] == ["input0"] and [t.name for t in m.outputs] == ["output0"]
    assert m.inputs[0].shape == ("batch", 3, 16, 16)
    for batch in (2, 5):
        x = torch.randn(batch, 3, 16, 16)
        with torch.no_grad():
            want = net(x).numpy()
        np.testing.assert_allclose(m(input0=x.numpy())["output0"], want, rtol=1e-5, atol=1e-5)
    named = kiln.from_pytorch(net, (example,), input_names=["image"], output_names=["logits"])
    assert [t.name for t in named.inputs] == ["image"] and list(named(image=example.numpy())) == ["logits"]


def test_from_pytorch_without_torch(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` now raises ImportError
    with pytest.raises(ImportError, match="needs PyTorch"):
        kiln.from_pytorch(object(), ())


def test_mobilenet_v2_matches_kiln_run(tmp_path):
    model = os.path.join(MODELS, "torch", "mobilenet_v2.onnx")
    cli = os.environ.get("KILN_CLI", "")
    if not os.path.exists(model):
        pytest.skip(f"{model} not fetched (scripts/fetch-models.sh)")
    if not os.access(cli, os.X_OK):
        pytest.skip("KILN_CLI does not name the kiln command")
    m = kiln.compile(model, shapes={"input": (1, 3, 224, 224)})
    assert [t.shape for t in m.inputs] == [(1, 3, 224, 224)]
    x = RNG.standard_normal((1, 3, 224, 224)).astype(np.float32)
    np.save(tmp_path / "input.npy", x)
    out_dir = tmp_path / "out"
    subprocess.run(
        [cli, "run", model, "--input", f"input={tmp_path / 'input.npy'}", "--output-dir", str(out_dir)],
        check=True,
        capture_output=True,
    )
    got = m(input=x)
    assert list(got) == [t.name for t in m.outputs]
    for name, value in got.items():
        want = np.load(out_dir / f"{name}.npy")
        assert value.shape == want.shape
        np.testing.assert_allclose(value, want, rtol=1e-4, atol=1e-5)
