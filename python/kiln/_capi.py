"""ctypes declarations of kiln's two C APIs (include/kiln/runtime.h, include/kiln/compiler.h).

The libraries are found in KILN_LIBRARY_DIR when it is set (a kiln build directory, for
running from a source tree), else in the package's _lib/ folder, where `pip install`
copied them. They are opened on first use, so `import kiln` never fails for want of them.
"""
import ctypes
import os

import numpy as np

KILN_OK = 0
KILN_MAX_RANK = 8


class KilnError(RuntimeError):
    """An error reported by kiln: a bad model, input, option or library (one-line message)."""


class Tensor(ctypes.Structure):
    """struct kiln_tensor."""

    _fields_ = [
        ("name", ctypes.c_char_p),
        ("dtype", ctypes.c_int),
        ("rank", ctypes.c_int),
        ("shape", ctypes.c_int64 * KILN_MAX_RANK),
        ("data", ctypes.c_void_p),
        ("bytes", ctypes.c_size_t),
    ]


class CompileOptions(ctypes.Structure):
    """struct kiln_compile_options."""

    _fields_ = [
        ("target", ctypes.c_char_p),
        ("opt_level", ctypes.c_int),
        ("shapes", ctypes.c_char_p),
        ("kernel_cache", ctypes.c_int),
        ("progress", ctypes.c_int),
    ]


# kiln_dtype code -> (name, NumPy dtype). bfloat16 has no NumPy type: it travels as its
# uint16 bit pattern. Strings are not supported by the C API.
DTYPES = {
    1: ("float32", np.dtype(np.float32)),
    2: ("uint8", np.dtype(np.uint8)),
    3: ("int8", np.dtype(np.int8)),
    4: ("uint16", np.dtype(np.uint16)),
    5: ("int16", np.dtype(np.int16)),
    6: ("int32", np.dtype(np.int32)),
    7: ("int64", np.dtype(np.int64)),
    9: ("bool", np.dtype(np.bool_)),
    10: ("float16", np.dtype(np.float16)),
    11: ("float64", np.dtype(np.float64)),
    12: ("uint32", np.dtype(np.uint32)),
    13: ("uint64", np.dtype(np.uint64)),
    16: ("bfloat16", np.dtype(np.uint16)),
}
NAMES = {0: "undefined", 8: "string"}
CODES = {dt: code for code, (_, dt) in DTYPES.items() if code != 16}


def dtype_name(code):
    return DTYPES[code][0] if code in DTYPES else NAMES.get(code, f"dtype {code}")


def numpy_dtype(code, what):
    if code not in DTYPES:
        raise KilnError(f"{what} has dtype {dtype_name(code)}, which the Python package does not support")
    return DTYPES[code][1]


_P = ctypes.POINTER
_SIGNATURES = {
    "runtime": {
        "kiln_version": (ctypes.c_char_p, []),
        "kiln_last_error": (ctypes.c_char_p, []),
        "kiln_model_load": (ctypes.c_void_p, [ctypes.c_char_p]),
        "kiln_model_free": (None, [ctypes.c_void_p]),
        "kiln_model_num_inputs": (ctypes.c_int, [ctypes.c_void_p]),
        "kiln_model_num_outputs": (ctypes.c_int, [ctypes.c_void_p]),
        "kiln_model_input_info": (ctypes.c_int, [ctypes.c_void_p, ctypes.c_int, _P(Tensor)]),
        "kiln_model_output_info": (ctypes.c_int, [ctypes.c_void_p, ctypes.c_int, _P(Tensor)]),
        "kiln_model_input_dim_name": (ctypes.c_char_p, [ctypes.c_void_p, ctypes.c_int, ctypes.c_int]),
        "kiln_model_output_dim_name": (ctypes.c_char_p, [ctypes.c_void_p, ctypes.c_int, ctypes.c_int]),
        "kiln_model_target": (ctypes.c_char_p, [ctypes.c_void_p]),
        "kiln_model_run": (ctypes.c_int, [ctypes.c_void_p, _P(Tensor), ctypes.c_int, _P(Tensor), ctypes.c_int]),
        "kiln_set_num_threads": (None, [ctypes.c_int]),
        "kiln_get_num_threads": (ctypes.c_int, []),
        "kiln_free": (None, [ctypes.c_void_p]),
    },
    "compiler": {
        "kiln_compile_file": (ctypes.c_int, [ctypes.c_char_p, _P(CompileOptions), ctypes.c_char_p]),
        "kiln_compile_bytes": (
            ctypes.c_int,
            [ctypes.c_char_p, ctypes.c_size_t, _P(CompileOptions), ctypes.c_char_p],
        ),
        "kiln_compile_last_error": (ctypes.c_char_p, []),
    },
}
_FILES = {"runtime": "libkiln_runtime.so", "compiler": "libkiln.so"}
_loaded = {}


def library_dir():
    """Where the shared libraries are looked up."""
    return os.environ.get("KILN_LIBRARY_DIR") or os.path.join(os.path.dirname(os.path.abspath(__file__)), "_lib")


def _open(which):
    if which in _loaded:
        return _loaded[which]
    path = os.path.join(library_dir(), _FILES[which])
    if not os.path.exists(path):
        raise KilnError(
            f"{_FILES[which]} not found in {library_dir()}: reinstall the package, or set KILN_LIBRARY_DIR "
            "to a kiln build directory"
        )
    try:
        lib = ctypes.CDLL(path)
    except OSError as e:
        raise KilnError(f"cannot load {path}: {e}") from None
    for name, (restype, argtypes) in _SIGNATURES[which].items():
        fn = getattr(lib, name)
        fn.restype, fn.argtypes = restype, argtypes
    _loaded[which] = lib
    return lib


def runtime():
    return _open("runtime")


def compiler():
    return _open("compiler")


def runtime_error():
    return KilnError(runtime().kiln_last_error().decode(errors="replace") or "unknown error")


def compiler_error():
    return KilnError(compiler().kiln_compile_last_error().decode(errors="replace") or "unknown error")
