"""kiln: compile ONNX models ahead of time into native libraries and run them on NumPy arrays.

    import numpy as np, kiln
    m = kiln.compile("model.onnx", shapes={"x": (1, 3, 224, 224)})
    print(m.inputs, m.outputs)
    y = m(x=np.random.rand(1, 3, 224, 224).astype(np.float32))   # {output name: ndarray}

See docs/PYTHON.md.
"""
from ._capi import KilnError
from ._capi import runtime as _runtime
from ._compile import compile, compile_library, from_pytorch
from ._module import Module, TensorInfo, load

__all__ = [
    "KilnError",
    "Module",
    "TensorInfo",
    "compile",
    "compile_library",
    "from_pytorch",
    "get_num_threads",
    "load",
    "set_num_threads",
    "version",
]


def set_num_threads(n):
    """Threads that parallel kernels use, for every model in the process (default: all
    cores, or the KILN_THREADS environment variable)."""
    if int(n) < 1:
        raise KilnError(f"the number of threads must be at least 1, got {n}")
    _runtime().kiln_set_num_threads(int(n))


def get_num_threads():
    return _runtime().kiln_get_num_threads()


def version():
    """The version of the kiln runtime library."""
    return _runtime().kiln_version().decode()
