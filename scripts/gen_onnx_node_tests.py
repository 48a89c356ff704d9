#!/usr/bin/python3
"""Runs ONNX's backend-test data generator (onnx.backend.test.cmd_tools generate-data)
with Debian's NumPy 1.24, which removed the np.float/np.int/... aliases the generators of
onnx 1.12 still use. The aliases are restored in this process only; nothing is patched.
Usage: /usr/bin/python3 scripts/gen_onnx_node_tests.py -o OUT_DIR [other generate-data args]
"""
import sys
import warnings

import numpy as np

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # np.object / np.str lookups warn in NumPy 1.24
    for _alias, _type in (("float", float), ("int", int), ("bool", bool),
                          ("object", object), ("complex", complex), ("str", str)):
        if not hasattr(np, _alias):
            setattr(np, _alias, _type)

from onnx.backend.test import cmd_tools  # noqa: E402  (needs the aliases above)

if __name__ == "__main__":
    sys.argv = [sys.argv[0], "generate-data"] + sys.argv[1:]
    cmd_tools.main()
