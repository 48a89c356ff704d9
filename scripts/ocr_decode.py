#!/usr/bin/python3
"""Greedy CTC decoding of PaddleOCR recognition output.

LOGITS.npy is [N, T, C] (or [T, C]) scores/probabilities. Per time step take the argmax,
collapse repeats, drop index 0 (blank); index i >= 1 maps to line i-1 of KEYS.txt and
index len(keys)+1 to a space. Prints one decoded line per batch element.
--strip removes leading/trailing spaces (PaddleOCR itself does not strip).
Usage: /usr/bin/python3 scripts/ocr_decode.py LOGITS.npy KEYS.txt [--score] [--strip]
"""
import argparse
import sys

import numpy as np


def load_keys(path):
    with open(path, encoding="utf-8") as f:
        keys = [line.rstrip("\r\n") for line in f]
    while keys and keys[-1] == "":
        keys.pop()
    return keys


def decode(logits, keys):
    idx = logits.argmax(axis=-1)
    conf = logits.max(axis=-1)
    chars, scores, prev = [], [], -1
    for t, i in enumerate(idx):
        i = int(i)
        if i != prev and i != 0:
            if 1 <= i <= len(keys):
                chars.append(keys[i - 1])
            elif i == len(keys) + 1:
                chars.append(" ")
            else:
                raise SystemExit(f"class index {i} out of range for {len(keys)} keys")
            scores.append(float(conf[t]))
        prev = i
    return "".join(chars), (float(np.mean(scores)) if scores else 0.0)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("logits")
    ap.add_argument("keys")
    ap.add_argument("--score", action="store_true", help="print mean max-score to stderr")
    ap.add_argument("--strip", action="store_true", help="strip leading/trailing spaces")
    args = ap.parse_args()
    x = np.load(args.logits)
    if x.ndim == 2:
        x = x[None]
    if x.ndim != 3:
        raise SystemExit(f"expected [N, T, C] logits, got shape {x.shape}")
    keys = load_keys(args.keys)
    if x.shape[2] != len(keys) + 2:
        print(f"[ocr_decode] warning: {x.shape[2]} classes but {len(keys)} keys (+blank+space)",
              file=sys.stderr)
    for row in x:
        text, score = decode(row, keys)
        if args.strip:
            text = text.strip(" ")
        print(text)
        if args.score:
            print(f"[ocr_decode] score {score:.4f}", file=sys.stderr)


if __name__ == "__main__":
    main()
