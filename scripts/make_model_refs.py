#!/usr/bin/python3
"""Generates ONNX Runtime reference outputs for every model found in $CACHE/models.

For each model and each of its two shapes writes
  $CACHE/refs/<model>/<shapetag>/inputs/<input name>.npy    seeded random inputs
  $CACHE/refs/<model>/<shapetag>/outputs/<output name>.npy  ORT outputs (scripts/ort_run.js)
  $CACHE/refs/<model>/<shapetag>/manifest.json              model, files, dtypes, shapes
Float inputs: np.random.default_rng(0).uniform(-1, 1, shape).astype(float32); BERT token
ids: np.random.default_rng(0).integers(0, 30522, shape, dtype=int64). <shapetag> is the
input shape joined by "x" (e.g. 4x3x224x224). Names are sanitized like ort_run.js does
(anything but [A-Za-z0-9._-] becomes "_"). Real-image extras, rendered with
render_text.sh + image_to_npy.py: ppocr_rec/hello_world_1x3x48x320 (expected text in the
manifest) and ppocr_det/text_page_1x3x640x640 (five centred text lines; on random noise the
det output is a saturated ~0 probability map, a weak check on its own).
Idempotent: a case is skipped when its manifest exists and the model file is unchanged.
Usage: /usr/bin/python3 scripts/make_model_refs.py [--only MODEL ...] [--force]
       [--time [N]] [--threads 2]
"""
import argparse
import json
import os
import re
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
CACHE = os.environ.get("KILN_CACHE", os.path.expanduser("~/.cache/kiln"))

CNN_SHAPES = [(1, 3, 224, 224), (4, 3, 224, 224)]
MODELS = {
    # name: (path relative to $CACHE/models, input name, shapes, input kind)
    # Detection is checked on rendered text pages only (two shapes, below): on random noise
    # its sigmoid map is ~1e-7 everywhere, where ORT's approximate sigmoid is quantized in
    # steps of 2^-22, so a relative comparison would measure ORT's approximation.
    "ppocr_det": ("ppocr/ch_PP-OCRv4_det_infer.onnx", "x", [], "float"),
    "ppocr_rec": ("ppocr/ch_PP-OCRv4_rec_infer.onnx", "x",
                  [(1, 3, 48, 320), (1, 3, 48, 160)], "float"),
    "ppocr_cls": ("ppocr/ch_ppocr_mobile_v2.0_cls_infer.onnx", "x",
                  [(1, 3, 48, 192), (2, 3, 48, 192)], "float"),
    "resnet18": ("torch/resnet18.onnx", "input", CNN_SHAPES, "float"),
    "resnet50": ("torch/resnet50.onnx", "input", CNN_SHAPES, "float"),
    "mobilenet_v2": ("torch/mobilenet_v2.onnx", "input", CNN_SHAPES, "float"),
    "mobilenet_v3_large": ("torch/mobilenet_v3_large.onnx", "input", CNN_SHAPES, "float"),
    "bert_like": ("torch/bert_like.onnx", "input_ids", [(1, 16), (1, 128)], "tokens"),
}
HELLO = "Hello World 2026"
PAGE = ("kiln deep-learning compiler\n\nHello World 2026\n\nPP-OCRv4 text detection\n\n"
        "ONNX Runtime 1.30.0 reference\n\n0123456789 abcdefghij")


def log(msg):
    print(f"[make_model_refs] {msg}", file=sys.stderr, flush=True)


def sanitize(name):
    return re.sub(r"[^A-Za-z0-9._-]", "_", name) or "output"


def model_stamp(path):
    st = os.stat(path)
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


def check_input_names(path, expected):
    import onnx
    m = onnx.load(path, load_external_data=False)
    inits = {i.name for i in m.graph.initializer}
    names = [i.name for i in m.graph.input if i.name not in inits]
    if names != [expected]:
        raise SystemExit(f"{path}: inputs {names}, expected [{expected!r}]")


def make_case(name, model_path, in_name, tag, make_input, args, extra=None):
    case = os.path.join(CACHE, "refs", name, tag)
    manifest_path = os.path.join(case, "manifest.json")
    stamp = model_stamp(model_path)
    if os.path.exists(manifest_path) and not args.force:
        with open(manifest_path) as f:
            old = json.load(f)
        if old.get("model_stamp") == stamp and (not args.time or "ort_timing" in old):
            log(f"  {name}/{tag}: up to date")
            return old
    in_dir, out_dir = os.path.join(case, "inputs"), os.path.join(case, "outputs")
    os.makedirs(in_dir, exist_ok=True)
    os.makedirs(out_dir, exist_ok=True)
    if os.path.exists(manifest_path):
        os.remove(manifest_path)
    x = make_input()
    in_file = os.path.join(in_dir, sanitize(in_name) + ".npy")
    np.save(in_file, x)
    cmd = ["node", os.path.join(HERE, "ort_run.js"), model_path,
           "--input", f"{in_name}={in_file}", "--output-dir", out_dir,
           "--threads", str(args.threads), "--json"]
    if args.time:
        cmd += ["--iterations", str(args.time), "--warmup", "3"]
    t0 = time.time()
    res = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
    manifest = {
        "model": name,
        "model_path": os.path.abspath(model_path),
        "model_rel": os.path.relpath(model_path, CACHE),
        "model_stamp": stamp,
        "shape_tag": tag,
        "inputs": [{"name": in_name, "file": os.path.relpath(in_file, case),
                    "dtype": str(x.dtype), "shape": list(x.shape)}],
        "outputs": [{"name": o, "file": os.path.relpath(v["file"], case),
                     "dtype": v["type"], "shape": v["dims"]}
                    for o, v in res["outputs"].items()],
        "reference": {"runtime": "onnxruntime-node 1.30.0", "threads": args.threads,
                      "graph_optimization_level": "all"},
        "suggested_tolerance": {"rtol": 1e-3, "atol": 1e-4},
    }
    if extra:
        manifest.update(extra)
    if "timing" in res:
        manifest["ort_timing"] = res["timing"]
    tmp = manifest_path + ".part"
    with open(tmp, "w") as f:
        json.dump(manifest, f, indent=1)
    os.replace(tmp, manifest_path)
    outs = ", ".join(f"{o['name']} {o['shape']}" for o in manifest["outputs"])
    timing = f", ORT median {res['timing']['median_ms']} ms" if "timing" in res else ""
    log(f"  {name}/{tag}: {outs} ({time.time() - t0:.1f}s{timing})")
    return manifest


def float_input(shape):
    return lambda: np.random.default_rng(0).uniform(-1.0, 1.0, size=shape).astype(np.float32)


def token_input(shape):
    return lambda: np.random.default_rng(0).integers(0, 30522, size=shape, dtype=np.int64)


def text_input(text, height, width):
    def make():
        import tempfile
        with tempfile.TemporaryDirectory() as tmp:
            png, npy = os.path.join(tmp, "text.png"), os.path.join(tmp, "text.npy")
            subprocess.run([os.path.join(HERE, "render_text.sh"), text, png,
                            "--size", f"{width}x{height}"], check=True, stderr=subprocess.DEVNULL)
            subprocess.run([sys.executable, os.path.join(HERE, "image_to_npy.py"), png, npy,
                            "--height", str(height), "--width", str(width)], check=True,
                           stderr=subprocess.DEVNULL)
            return np.load(npy)
    return make


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", action="append", choices=sorted(MODELS))
    ap.add_argument("--force", action="store_true")
    ap.add_argument("--time", nargs="?", type=int, const=20, default=0,
                    help="also record ORT timing (N runs after 3 warm-ups, default 20)")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    summary = []
    for name in args.only or MODELS:
        rel, in_name, shapes, kind = MODELS[name]
        path = os.path.join(CACHE, "models", rel)
        if not os.path.exists(path):
            log(f"  {name}: {path} not found, skipping (scripts/fetch-models.sh [--torch])")
            continue
        check_input_names(path, in_name)
        for shape in shapes:
            make = token_input(shape) if kind == "tokens" else float_input(shape)
            m = make_case(name, path, in_name, "x".join(map(str, shape)), make, args)
            summary.append(m)
        if name == "ppocr_rec":
            keys = os.path.join(CACHE, "models", "ppocr", "ppocr_keys_v1.txt")
            make_case(name, path, in_name, "hello_world_1x3x48x320", text_input(HELLO, 48, 320),
                      args, {"expected_text": HELLO, "keys": os.path.relpath(keys, CACHE),
                             "input_source": "render_text.sh + image_to_npy.py (RGB, x/255*2-1)"})
        if name == "ppocr_det":
            for h, w in ((640, 640), (320, 480)):
                make_case(name, path, in_name, f"text_page_1x3x{h}x{w}", text_input(PAGE, h, w),
                          args, {"rendered_text": PAGE,
                                 "input_source": f"render_text.sh --size {w}x{h} + image_to_npy.py"})
    log(f"done: {len(summary)} random-input cases under {os.path.join(CACHE, 'refs')}")


if __name__ == "__main__":
    main()
