#!/usr/bin/python3
"""Start-up: loading a compiled model and running it once, kiln vs ONNX Runtime.

kiln: `kiln compile` writes the library once (not timed); each round then runs
`kiln run MODEL.so --json` in a fresh process and takes load_s (dlopen, checks, plan) plus
run_ms (the first inference). ORT: `scripts/ort_run.js --json` in a fresh process, load_ms
(InferenceSession.create with all graph optimizations) plus first_run_ms. Both are measured
inside the process (neither counts starting the process or loading the runtime itself).
Rounds alternate between the two; the medians go into docs/PERFORMANCE.md between the
`startup` markers (above the GENERATED part that bench/compare_ort.sh rewrites).

Usage: bench/startup.py [--rounds N] [--threads N] [--model PATH] [--no-doc]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CACHE = os.environ.get("KILN_CACHE", os.path.join(os.path.expanduser("~"), ".cache", "kiln"))
KILN = os.path.join(ROOT, "build", "kiln")
ORT_RUN = os.path.join(ROOT, "scripts", "ort_run.js")
WORK = os.path.join(ROOT, "build-bench", "startup")
DOC = os.path.join(ROOT, "docs", "PERFORMANCE.md")
BEGIN = "<!-- BEGIN startup: bench/startup.py -->"
END = "<!-- END startup -->"


def run(cmd):
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"startup: {' '.join(cmd)} failed: {p.stderr.strip()[-500:]}")
    return p.stdout


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--model", default=os.path.join(CACHE, "models", "torch", "resnet50.onnx"))
    ap.add_argument("--no-doc", action="store_true", help="print only, leave docs/PERFORMANCE.md alone")
    a = ap.parse_args()
    os.makedirs(WORK, exist_ok=True)
    lib = os.path.join(WORK, os.path.basename(a.model).replace(".onnx", ".so"))
    x = os.path.join(WORK, "input.npy")
    np.save(x, np.random.default_rng(0).standard_normal((1, 3, 224, 224)).astype(np.float32))
    compiled = json.loads(run([KILN, "compile", a.model, "-o", lib, "--shape", "input=1x3x224x224", "--json"]))
    kiln_ms, ort_ms, kiln_parts, ort_parts = [], [], [], []
    for r in range(a.rounds):
        k = json.loads(run([KILN, "run", lib, "--input", f"input={x}", "--threads", str(a.threads), "--json"]))
        o = json.loads(run(["node", ORT_RUN, a.model, "--input", f"input={x}", "--threads", str(a.threads), "--json"]))
        kiln_parts.append((k["load_s"] * 1000, k["run_ms"]))
        ort_parts.append((o["load_ms"], o["first_run_ms"]))
        kiln_ms.append(sum(kiln_parts[-1]))
        ort_ms.append(sum(ort_parts[-1]))
        print(f"round {r + 1}/{a.rounds}: kiln {kiln_parts[-1][0]:.1f} + {kiln_parts[-1][1]:.1f} ms, "
              f"ORT {ort_parts[-1][0]:.1f} + {ort_parts[-1][1]:.1f} ms", file=sys.stderr)
    med = statistics.median
    name = os.path.basename(a.model)
    lines = [
        BEGIN,
        "## Start-up: load + first inference",
        "",
        f"{name}, 1×3×224×224, {a.threads} threads, median of {a.rounds} fresh processes each "
        f"(`bench/startup.py`). kiln loads the library from `kiln compile` "
        f"({compiled['bytes'] / 1e6:.0f} MB, compiled once beforehand in {compiled['compile_s']:.1f} s); "
        "ORT creates its session from the .onnx.",
        "",
        "| | load ms | first run ms | total ms |",
        "|---|---:|---:|---:|",
        f"| kiln (`.so`) | {med(p[0] for p in kiln_parts):.1f} | {med(p[1] for p in kiln_parts):.1f} | "
        f"{med(kiln_ms):.1f} |",
        f"| ONNX Runtime | {med(p[0] for p in ort_parts):.1f} | {med(p[1] for p in ort_parts):.1f} | "
        f"{med(ort_ms):.1f} |",
        "",
        f"kiln / ORT: {med(kiln_ms) / med(ort_ms):.2f}.",
        END,
    ]
    text = "\n".join(lines)
    print(text)
    if a.no_doc:
        return
    doc = open(DOC).read()
    if BEGIN in doc:
        head, rest = doc.split(BEGIN, 1)
        doc = head + text + rest.split(END, 1)[1]
    else:
        marker = "<!-- GENERATED"
        i = doc.find(marker)
        doc = doc[:i] + text + "\n\n" + doc[i:] if i >= 0 else doc + "\n" + text + "\n"
    with open(DOC, "w") as f:
        f.write(doc)


if __name__ == "__main__":
    main()
