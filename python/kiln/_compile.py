"""Compiling ONNX models (libkiln): to a library file, to a Module, from PyTorch."""
import ctypes
import io
import os
import shutil
import tempfile

from . import _capi
from ._capi import KilnError
from ._module import Module


def _shapes_string(shapes):
    if shapes is None or isinstance(shapes, str):
        return shapes
    items = []
    for name, dims in shapes.items():
        if not name or any(c in name for c in ";="):
            raise KilnError(f"shapes: bad input name {name!r}")
        dims = (dims,) if isinstance(dims, int) else tuple(dims)
        items.append(f"{name}=" + "x".join(str(int(d)) for d in dims))
    return ";".join(items)


def compile_library(model, path, target="native", opt_level=3, shapes=None, kernel_cache=True, progress=False):
    """Compiles `model` into a model library at `path` without loading it, so `target` may
    be another machine's ("aarch64-linux-gnu"). Returns `path`. The arguments are those of
    kiln.compile()."""
    opts = _capi.CompileOptions(
        target=(target or "native").encode(),
        opt_level=int(opt_level),
        shapes=(_shapes_string(shapes) or "").encode(),
        kernel_cache=1 if kernel_cache else 0,
        progress=1 if progress else 0,
    )
    lib = _capi.compiler()
    out = os.fsencode(path)
    if isinstance(model, (str, os.PathLike)):
        status = lib.kiln_compile_file(os.fsencode(model), ctypes.byref(opts), out)
    else:
        if hasattr(model, "SerializeToString"):  # an onnx.ModelProto
            model = model.SerializeToString()
        if not isinstance(model, (bytes, bytearray, memoryview)):
            raise TypeError(f"model must be a path, bytes or an onnx.ModelProto, not {type(model).__name__}")
        data = bytes(model)
        status = lib.kiln_compile_bytes(data, len(data), ctypes.byref(opts), out)
    if status != _capi.KILN_OK:
        raise _capi.compiler_error()
    return path


def compile(model, target="native", opt_level=3, shapes=None, kernel_cache=True, progress=False):
    """Compiles an ONNX model and loads it.

    model: a path to a .onnx file, its bytes, or an onnx.ModelProto.
    target: "native", "x86-64-v3" (AVX2), "x86-64-v4" (AVX-512); a library for another
        machine ("aarch64-linux-gnu") is written with kiln.compile_library() instead.
    opt_level: 0 (the reference schedules) .. 3.
    shapes: {input name: dims} pins symbolic input dims, e.g. {"x": (1, 3, 224, 224)};
        other inputs keep their symbolic dims.
    kernel_cache: reuse compiled kernels from ~/.cache/kiln/kernels.
    progress: print kiln's compile steps on stderr.
    """
    tmp = tempfile.mkdtemp(prefix="kiln-")
    try:
        path = compile_library(model, os.path.join(tmp, "model.so"), target, opt_level, shapes, kernel_cache, progress)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    try:
        return Module(path, _owned_dir=tmp)
    except KilnError as e:
        if target in (None, "native"):
            raise
        raise KilnError(
            f"a library for target '{target}' does not run on this machine; write it with "
            f"kiln.compile_library(model, path, target='{target}') ({e})"
        ) from None


def from_pytorch(model, example_inputs, input_names=None, output_names=None, dynamic_axes=None, **compile_kwargs):
    """Exports a torch.nn.Module to ONNX (opset 17, in memory) and compiles it.

    example_inputs: a tensor or a tuple of tensors to trace with. Inputs are named input0,
    input1, ... and outputs output0, output1, ... unless input_names / output_names say
    otherwise. dynamic_axes: as torch.onnx.export, e.g. {"input0": {0: "batch"}} keeps the
    batch dim symbolic. Other keyword arguments go to kiln.compile()."""
    try:
        import torch
    except ImportError as e:
        raise ImportError(f"kiln.from_pytorch needs PyTorch, which does not import here: {e}") from e
    if isinstance(example_inputs, torch.Tensor):
        example_inputs = (example_inputs,)
    example_inputs = tuple(example_inputs)
    if input_names is None:
        input_names = [f"input{i}" for i in range(len(example_inputs))]
    buf = io.BytesIO()
    with torch.no_grad():
        if output_names is None:
            output_names = [f"output{i}" for i in range(_count_tensors(torch, model(*example_inputs)))]
        torch.onnx.export(
            model,
            example_inputs,
            buf,
            opset_version=17,
            input_names=list(input_names),
            output_names=list(output_names),
            dynamic_axes=dynamic_axes,
        )
    return compile(buf.getvalue(), **compile_kwargs)


def _count_tensors(torch, value):
    """Tensors in a model's result, flattened as torch.onnx.export does."""
    if isinstance(value, torch.Tensor):
        return 1
    if isinstance(value, (list, tuple)):
        return sum(_count_tensors(torch, v) for v in value)
    if isinstance(value, dict):
        return sum(_count_tensors(torch, v) for v in value.values())
    return 0
