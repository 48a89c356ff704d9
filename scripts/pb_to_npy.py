#!/usr/bin/python3
"""Converts serialized ONNX TensorProto files (.pb, e.g. the backend tests' input_0.pb /
output_0.pb) to .npy with onnx.numpy_helper. Prints name, dtype and shape to stderr.
Usage: /usr/bin/python3 scripts/pb_to_npy.py IN.pb [OUT.npy]      (default: IN with .npy)
       /usr/bin/python3 scripts/pb_to_npy.py --dir TEST_DATA_SET_DIR [--out-dir DIR]
"""
import argparse
import glob
import os
import sys

import numpy as np
import onnx
from onnx import numpy_helper


def convert(src, dst):
    t = onnx.TensorProto()
    with open(src, "rb") as f:
        t.ParseFromString(f.read())
    arr = numpy_helper.to_array(t)
    if arr.dtype == object:
        raise SystemExit(f"{src}: string tensors cannot be stored as plain .npy")
    np.save(dst, arr)
    print(f"[pb_to_npy] {src} -> {dst}: name={t.name!r} {arr.dtype} {list(arr.shape)}",
          file=sys.stderr)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("input", nargs="?")
    ap.add_argument("output", nargs="?")
    ap.add_argument("--dir", help="convert every *.pb in this directory")
    ap.add_argument("--out-dir", help="with --dir: where to write (default: same directory)")
    args = ap.parse_args()
    if args.dir:
        out_dir = args.out_dir or args.dir
        os.makedirs(out_dir, exist_ok=True)
        for src in sorted(glob.glob(os.path.join(args.dir, "*.pb"))):
            base = os.path.splitext(os.path.basename(src))[0]
            convert(src, os.path.join(out_dir, base + ".npy"))
    elif args.input:
        convert(args.input, args.output or os.path.splitext(args.input)[0] + ".npy")
    else:
        ap.error("give IN.pb or --dir DIR")


if __name__ == "__main__":
    main()
