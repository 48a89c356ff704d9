#!/usr/bin/python3
"""Exports random-weight PyTorch models to ONNX (opset 13) for kiln's tests and benchmarks.

Models (torch.manual_seed(0), eval mode, one file each in --out-dir):
  resnet18, resnet50, mobilenet_v2, mobilenet_v3_large  torchvision architectures;
      input `input` float32 [batch,3,224,224], output `output` [batch,1000].
      BatchNorm running statistics are calibrated on seeded random N(0,1) images before
      eval() (--no-calibrate skips this): with torchvision's default init (mean 0, var 1)
      MobileNet activations shrink to ~1e-9 at the output, useless as a numeric reference.
  bert_like  BERT-base-like encoder: token embedding (30522) + learned position
      embedding (512) + LayerNorm, then 12 separate nn.TransformerEncoderLayer
      (d=768, 12 heads, FFN 3072, GELU, batch_first); input `input_ids` int64
      [batch,seq], output `last_hidden_state` float32 [batch,seq,768].
Each exported file is checked with onnx.checker; existing files are skipped (idempotent).
--verify additionally runs each model in PyTorch and in ONNX Runtime (scripts/ort_run.js)
at two input shapes and compares the outputs.
Usage: /usr/bin/python3 scripts/export_torch_models.py [--out-dir DIR] [--only NAME ...]
       [--force] [--verify] [--no-calibrate]
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

import torch
import torch.nn as nn

CNNS = ["resnet18", "resnet50", "mobilenet_v2", "mobilenet_v3_large"]
ALL = CNNS + ["bert_like"]
OPSET = 13


def log(msg):
    print(f"[export-torch] {msg}", file=sys.stderr, flush=True)


class BertLike(nn.Module):
    def __init__(self, vocab=30522, d=768, heads=12, ffn=3072, layers=12, max_pos=512):
        super().__init__()
        self.tok = nn.Embedding(vocab, d)
        self.pos = nn.Embedding(max_pos, d)
        self.norm = nn.LayerNorm(d, eps=1e-12)
        # Separate modules on purpose: no weight sharing between layers.
        self.layers = nn.ModuleList([
            nn.TransformerEncoderLayer(d, heads, dim_feedforward=ffn, dropout=0.1,
                                       activation="gelu", batch_first=True)
            for _ in range(layers)])

    def forward(self, input_ids):
        seq = input_ids.shape[1]
        positions = torch.arange(seq, dtype=torch.long, device=input_ids.device).unsqueeze(0)
        x = self.norm(self.tok(input_ids) + self.pos(positions))
        for layer in self.layers:
            x = layer(x)
        return x


def calibrate_bn(model, batches=4, batch_size=8):
    """Sets BatchNorm running mean/var to the statistics of seeded random inputs."""
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None  # cumulative average over the calibration batches
    gen = torch.Generator().manual_seed(1)
    model.train()
    with torch.no_grad():
        for _ in range(batches):
            model(torch.randn(batch_size, 3, 224, 224, generator=gen))
    for bn in bns:
        bn.momentum = 0.1


def build(name, calibrate=True):
    torch.manual_seed(0)
    if name in CNNS:
        import torchvision
        model = getattr(torchvision.models, name)(weights=None)
        if calibrate:
            calibrate_bn(model)
        example = torch.randn(1, 3, 224, 224)
        names = (["input"], ["output"])
        axes = {"input": {0: "batch"}, "output": {0: "batch"}}
    elif name == "bert_like":
        model = BertLike()
        example = torch.randint(0, 30522, (1, 16), dtype=torch.long)
        names = (["input_ids"], ["last_hidden_state"])
        axes = {"input_ids": {0: "batch", 1: "seq"},
                "last_hidden_state": {0: "batch", 1: "seq"}}
    else:
        raise SystemExit(f"unknown model {name}; choose from {ALL}")
    model.eval()
    return model, example, names, axes


def export(name, path, calibrate=True):
    import onnx
    model, example, (in_names, out_names), axes = build(name, calibrate)
    tmp = path + ".part"
    t0 = time.time()
    # torch 1.13's TransformerEncoderLayer takes a fused "fast path"
    # (aten::_transformer_encoder_layer_fwd, not exportable) only when autograd is off
    # or no parameter requires grad. Tracing with grad enabled and parameters that
    # require grad keeps the plain, exportable path; eval() still disables dropout.
    with torch.enable_grad():
        torch.onnx.export(model, (example,), tmp, opset_version=OPSET,
                          input_names=in_names, output_names=out_names,
                          dynamic_axes=axes, do_constant_folding=True)
    m = onnx.load(tmp)
    onnx.checker.check_model(m)
    ops = sorted({n.op_type for n in m.graph.node})
    bad = [o for o in ops if o.startswith("ATen") or "transformer" in o.lower()]
    if bad:
        raise SystemExit(f"{name}: export produced non-standard ops {bad}")
    os.replace(tmp, path)
    log(f"  {name}: {len(m.graph.node)} nodes, {os.path.getsize(path) / 1e6:.1f} MB, "
        f"{time.time() - t0:.1f}s -> {path}")


def verify(name, path, calibrate=True):
    """Compares PyTorch eager outputs with ONNX Runtime's on two shapes per model."""
    model, _, (in_names, out_names), _ = build(name, calibrate)
    shapes = [(1, 16), (2, 40)] if name == "bert_like" else [(1, 3, 224, 224), (4, 3, 224, 224)]
    ort_run = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ort_run.js")
    rng = np.random.default_rng(0)
    for shape in shapes:
        if name == "bert_like":
            x = rng.integers(0, 30522, size=shape, dtype=np.int64)
        else:
            x = rng.uniform(-1, 1, size=shape).astype(np.float32)
        with torch.no_grad():
            ref = model(torch.from_numpy(x)).numpy()
        with tempfile.TemporaryDirectory() as tmp:
            np.save(os.path.join(tmp, "in.npy"), x)
            subprocess.run(["node", ort_run, path, "--input", f"{in_names[0]}={tmp}/in.npy",
                            "--output-dir", tmp], check=True, stderr=subprocess.DEVNULL)
            got = np.load(os.path.join(tmp, out_names[0] + ".npy"))
        err = float(np.abs(got - ref).max())
        scale = float(np.abs(ref).max())
        ok = got.shape == ref.shape and err <= 1e-3 * max(1.0, scale)
        log(f"  verify {name} {list(shape)}: out {list(got.shape)} max|ort-torch| {err:.2e} "
            f"(max|ref| {scale:.2e}) {'OK' if ok else 'MISMATCH'}")
        if not ok:
            raise SystemExit(f"{name}: ONNX Runtime output differs from PyTorch")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = os.path.join(os.environ.get("KILN_CACHE", os.path.expanduser("~/.cache/kiln")),
                           "models", "torch")
    ap.add_argument("--out-dir", default=default)
    ap.add_argument("--only", action="append", choices=ALL,
                    help="export only this model (repeatable)")
    ap.add_argument("--force", action="store_true", help="re-export existing files")
    ap.add_argument("--no-calibrate", dest="calibrate", action="store_false",
                    help="keep torchvision's initial BatchNorm statistics")
    ap.add_argument("--verify", action="store_true",
                    help="compare PyTorch and ONNX Runtime outputs (needs node + onnxruntime-node)")
    args = ap.parse_args()
    os.makedirs(args.out_dir, exist_ok=True)
    torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))
    for name in args.only or ALL:
        path = os.path.join(args.out_dir, name + ".onnx")
        if os.path.exists(path) and not args.force:
            log(f"  {name}: exists, skipping ({path})")
        else:
            log(f"  {name}: exporting (opset {OPSET})")
            export(name, path, args.calibrate)
        if args.verify:
            verify(name, path, args.calibrate)


if __name__ == "__main__":
    main()
