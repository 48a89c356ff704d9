#!/usr/bin/python3
"""Converts an image (any format ImageMagick reads) to a float32 NCHW .npy tensor.

The image is flattened onto white (alpha removed), resized to HxW if it has another size
(exact size, aspect ratio not kept), read as 8-bit RGB through `convert ... rgb:-` (no
PIL needed) and normalised with x/255*2-1 into [-1, 1] (identical to PaddleOCR's
(x/255-0.5)/0.5). Output shape 1x3xHxW, channel order RGB unless --bgr.
Usage: /usr/bin/python3 scripts/image_to_npy.py IN.png OUT.npy [--height 48] [--width 320]
       [--bgr] [--norm pm1|unit|raw]
"""
import argparse
import os
import shutil
import subprocess
import sys

import numpy as np


def convert_bin():
    env = os.environ.get("KILN_CONVERT")
    if env:
        return env
    return "/usr/bin/convert" if os.path.exists("/usr/bin/convert") else shutil.which("convert")


def image_size(path):
    identify = "/usr/bin/identify" if os.path.exists("/usr/bin/identify") else "identify"
    out = subprocess.run([identify, "-format", "%w %h\n", path], check=True,
                         capture_output=True, text=True).stdout.split()
    return int(out[0]), int(out[1])


def load_rgb(path, height, width):
    w, h = image_size(path)
    cmd = [convert_bin(), path + "[0]", "-background", "white", "-alpha", "remove",
           "-alpha", "off", "-colorspace", "sRGB"]
    if (w, h) != (width, height):
        print(f"[image_to_npy] resizing {w}x{h} -> {width}x{height}", file=sys.stderr)
        cmd += ["-resize", f"{width}x{height}!"]
    cmd += ["-depth", "8", "rgb:-"]
    raw = subprocess.run(cmd, check=True, capture_output=True).stdout
    if len(raw) != height * width * 3:
        raise SystemExit(f"unexpected raw size {len(raw)} for {width}x{height}x3")
    return np.frombuffer(raw, dtype=np.uint8).reshape(height, width, 3)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("input")
    ap.add_argument("output")
    ap.add_argument("--height", type=int, default=48)
    ap.add_argument("--width", type=int, default=320)
    ap.add_argument("--bgr", action="store_true", help="channel order BGR (default RGB)")
    ap.add_argument("--norm", choices=["pm1", "unit", "raw"], default="pm1",
                    help="pm1: x/255*2-1 (default), unit: x/255, raw: 0..255")
    args = ap.parse_args()
    hwc = load_rgb(args.input, args.height, args.width)
    if args.bgr:
        hwc = hwc[:, :, ::-1]
    x = hwc.astype(np.float32)
    if args.norm == "pm1":
        x = x / 255.0 * 2.0 - 1.0
    elif args.norm == "unit":
        x = x / 255.0
    x = np.ascontiguousarray(x.transpose(2, 0, 1)[None], dtype=np.float32)
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    np.save(args.output, x)
    print(f"[image_to_npy] {args.input} -> {args.output} {list(x.shape)} "
          f"[{x.min():.3f}, {x.max():.3f}] {'BGR' if args.bgr else 'RGB'}", file=sys.stderr)


if __name__ == "__main__":
    main()
