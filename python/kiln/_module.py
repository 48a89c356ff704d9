"""Module: a loaded model library (libkiln_runtime), run on NumPy arrays."""
import ctypes
import shutil
import weakref
from typing import NamedTuple, Tuple, Union

import numpy as np

from . import _capi
from ._capi import KilnError


class TensorInfo(NamedTuple):
    """An input or output of a model. `shape` holds ints for fixed dims and the symbol's
    name (a str such as "batch" or "(h / 4)") for symbolic ones; it is None when the
    rank is unknown. bfloat16 tensors have dtype uint16 (their bit pattern)."""

    name: str
    dtype: np.dtype
    shape: Union[Tuple[Union[int, str], ...], None]


def _describe(handle, i, info_fn, dim_fn):
    t = _capi.Tensor()
    if info_fn(handle, i, ctypes.byref(t)) != _capi.KILN_OK:
        raise _capi.runtime_error()
    name = t.name.decode()
    shape = None
    if t.rank >= 0:
        shape = tuple(
            int(t.shape[a]) if t.shape[a] >= 0 else dim_fn(handle, i, a).decode() for a in range(t.rank)
        )
    return TensorInfo(name, _capi.numpy_dtype(t.dtype, f"'{name}'"), shape), t.dtype


def _release(handle, owned_dir):
    _capi.runtime().kiln_model_free(handle)
    if owned_dir:
        shutil.rmtree(owned_dir, ignore_errors=True)


class Module:
    """A compiled model. Call it with NumPy arrays (by keyword, or by position in the order of
    `inputs`); it returns a dict output name -> ndarray, in the model's output order.

    Made by kiln.compile() (a temporary library, deleted with the Module) or kiln.load()."""

    def __init__(self, path, _owned_dir=None):
        lib = _capi.runtime()
        handle = lib.kiln_model_load(str(path).encode())
        if not handle:
            err = _capi.runtime_error()
            if _owned_dir:
                shutil.rmtree(_owned_dir, ignore_errors=True)
            raise err
        self._finalizer = weakref.finalize(self, _release, handle, _owned_dir)
        self._handle, self._path = handle, str(path)
        self.target = lib.kiln_model_target(handle).decode()
        ins = [
            _describe(handle, i, lib.kiln_model_input_info, lib.kiln_model_input_dim_name)
            for i in range(lib.kiln_model_num_inputs(handle))
        ]
        outs = [
            _describe(handle, i, lib.kiln_model_output_info, lib.kiln_model_output_dim_name)
            for i in range(lib.kiln_model_num_outputs(handle))
        ]
        self.inputs = [info for info, _ in ins]
        self.outputs = [info for info, _ in outs]
        self._input_codes = {info.name: code for info, code in ins}
        self._output_codes = [code for _, code in outs]

    def __repr__(self):
        def fmt(infos):
            return ", ".join(f"{t.name}: {t.dtype}{list(t.shape) if t.shape is not None else '[?]'}" for t in infos)

        return f"<kiln.Module target={self.target} inputs=({fmt(self.inputs)}) outputs=({fmt(self.outputs)})>"

    def export(self, path):
        """Copies the model library to `path` (kiln.load() reads it back; so does any program
        linked with libkiln_runtime). Returns `path`."""
        shutil.copyfile(self._path, path)
        return path

    def __call__(self, *args, **kwargs):
        if len(args) > len(self.inputs):
            raise KilnError(f"the model takes {len(self.inputs)} inputs, {len(args)} were given")
        named = dict(kwargs)
        for info, value in zip(self.inputs, args):
            if info.name in named:
                raise KilnError(f"input '{info.name}' is given twice")
            named[info.name] = value
        return self.run(named)

    def run(self, inputs):
        """Runs the model on `inputs` (a dict name -> array-like). Returns a dict output name ->
        ndarray in output order."""
        arrays = {name: self._as_input(name, value) for name, value in inputs.items()}
        c_inputs = (_capi.Tensor * max(1, len(arrays)))()
        names = []  # keeps the encoded names alive during the call
        for t, (name, arr) in zip(c_inputs, arrays.items()):
            names.append(name.encode())
            t.name, t.dtype, t.rank = names[-1], self._input_codes[name], arr.ndim
            t.shape[: arr.ndim] = arr.shape
            t.data, t.bytes = arr.ctypes.data, arr.nbytes
        results = self._output_buffers(arrays)
        c_outputs = (_capi.Tensor * max(1, len(results)))()
        for t, arr in zip(c_outputs, results):
            if arr is not None:
                t.data, t.bytes = arr.ctypes.data, arr.nbytes
        lib = _capi.runtime()
        status = lib.kiln_model_run(self._handle, c_inputs, len(arrays), c_outputs, len(results))
        try:
            if status != _capi.KILN_OK:
                raise _capi.runtime_error()
            out = {}
            for info, t, arr in zip(self.outputs, c_outputs, results):
                shape = tuple(t.shape[: t.rank])
                if arr is None:
                    arr = np.empty(shape, _capi.numpy_dtype(t.dtype, f"output '{info.name}'"))
                    ctypes.memmove(arr.ctypes.data, t.data, arr.nbytes)
                elif arr.shape != shape:
                    raise KilnError(f"output '{info.name}': kiln wrote shape {shape}, expected {arr.shape}")
                out[info.name] = arr
            return out
        finally:
            for t, arr in zip(c_outputs, results):
                if arr is None and t.data:
                    lib.kiln_free(t.data)

    def _as_input(self, name, value):
        """The array kiln reads for input `name`: `value` itself when it is a C-contiguous
        ndarray of the model's dtype, else a converted copy."""
        if name not in self._input_codes:
            raise KilnError(f"the model has no input named '{name}'")
        want = next(info.dtype for info in self.inputs if info.name == name)
        arr = np.asarray(value)
        if arr.dtype != want:
            if not np.can_cast(arr.dtype, want, "same_kind"):
                expects = _capi.dtype_name(self._input_codes[name])
                raise KilnError(f"input '{name}' has dtype {arr.dtype}, the model expects {expects}")
            arr = arr.astype(want, order="C")
        if not arr.flags.c_contiguous:
            arr = arr.copy(order="C")
        if arr.ndim > _capi.KILN_MAX_RANK:
            raise KilnError(f"input '{name}' has rank {arr.ndim}, kiln takes at most {_capi.KILN_MAX_RANK}")
        return arr

    def _output_buffers(self, arrays):
        """An empty array per output whose shape is known before the run (fixed dims, or
        symbols bound by the inputs' shapes); None where kiln must allocate."""
        bound = {}
        for info in self.inputs:
            arr = arrays.get(info.name)
            if arr is not None and info.shape is not None and arr.ndim == len(info.shape):
                bound.update({d: n for d, n in zip(info.shape, arr.shape) if isinstance(d, str)})
        buffers = []
        for info in self.outputs:
            if info.shape is None or any(isinstance(d, str) and d not in bound for d in info.shape):
                buffers.append(None)
            else:
                buffers.append(np.empty([bound[d] if isinstance(d, str) else d for d in info.shape], info.dtype))
        return buffers


def load(path):
    """Loads a model library written by Module.export(), kiln.compile_library() or
    `kiln compile`."""
    return Module(path)
