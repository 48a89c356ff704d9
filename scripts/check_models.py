#!/usr/bin/python3
"""Runs kiln on every ONNX Runtime reference case and compares the outputs.

Cases are ${KILN_CACHE:-~/.cache/kiln}/refs/<model>/<shapetag>/manifest.json (written by
scripts/make_model_refs.py). For each case: `kiln run MODEL --input NAME=FILE.npy ...
--output-dir TMP --json` (plus `--shape NAME=DIMS` for inputs whose dims are symbolic in
the model, unless --shape-mode never), then per output the relative L2 error
||kiln - ort|| / ||ort|| (absolute L2 if the reference is all zeros); a case passes when
every output has the reference dtype and shape, no NaN where ORT has none, and rel-L2 <= --tol
(default 1e-4).
Statuses: PASS; FAIL (ran, wrong result); ERROR (kiln refused the model: exit 2, usually an
unsupported op); CRASH (signal or internal error, exit 1); TIMEOUT.

Every case writes into its own temp dir and only reads the cache, so several instances
(and --jobs N) can run side by side.

Ratchet: --expect FILE (one case id `model/shapetag` per line, '#' comments) makes the exit
status non-zero only when a listed case does not pass (or is missing from the cache);
without --expect any non-passing case fails the run. --write-passing FILE writes the ids
of the passing cases (entries for cases not run this time, e.g. with --only, are kept).
Exit status 2 when there are no reference cases at all.

Usage: /usr/bin/python3 scripts/check_models.py [--kiln build/kiln] [--only MODEL ...]
       [--filter SUBSTR] [--jobs N] [--threads N] [--opt-level N] [--target T] [--tol 1e-4]
       [--timeout S] [--shape-mode auto|always|never] [--expect FILE]
       [--write-passing FILE] [--json FILE|-] [--keep-outputs DIR] [-v]
"""
import argparse
import concurrent.futures
import glob
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
CACHE = os.environ.get("KILN_CACHE", os.path.expanduser("~/.cache/kiln"))
HOW_TO_FETCH = ("run scripts/fetch-models.sh --torch && scripts/make_model_refs.sh "
                "(or the CTest fixture models_cache)")


def sanitize(name):
    return re.sub(r"[^A-Za-z0-9._-]", "_", name) or "output"


def log(msg):
    print(f"[check_models] {msg}", file=sys.stderr, flush=True)


def find_cases(refs_dir):
    cases = []
    for mf in sorted(glob.glob(os.path.join(refs_dir, "*", "*", "manifest.json"))):
        case_dir = os.path.dirname(mf)
        with open(mf) as f:
            m = json.load(f)
        m["_dir"] = case_dir
        m["_id"] = f"{m.get('model', os.path.basename(os.path.dirname(case_dir)))}/" \
                   f"{m.get('shape_tag', os.path.basename(case_dir))}"
        cases.append(m)
    return cases


def model_path_of(m):
    # Prefer the path relative to the current cache (the cache may have moved).
    if m.get("model_rel"):
        p = os.path.join(CACHE, m["model_rel"])
        if os.path.exists(p):
            return p
    return m.get("model_path", "")


_sym_cache = {}


def symbolic_inputs(model_path):
    """Names of graph inputs with a symbolic or unknown dim (needs python3-onnx)."""
    if model_path in _sym_cache:
        return _sym_cache[model_path]
    try:
        import onnx
        g = onnx.load(model_path, load_external_data=False).graph
        inits = {i.name for i in g.initializer}
        r = set()
        for vi in g.input:
            if vi.name in inits:
                continue
            dims = vi.type.tensor_type.shape.dim
            if not vi.type.tensor_type.HasField("shape") or \
                    any(not d.HasField("dim_value") for d in dims):
                r.add(vi.name)
    except Exception as e:  # noqa: BLE001 - fall back to passing --shape for all inputs
        log(f"cannot read input dims of {model_path} ({e}); passing --shape for all inputs")
        r = None
    _sym_cache[model_path] = r
    return r


def rel_l2(got, want):
    g = got.astype(np.float64).ravel()
    w = want.astype(np.float64).ravel()
    finite = np.isfinite(w)
    if not finite.all():  # compare non-finite reference values exactly, the rest by L2
        nonfin_ok = np.array_equal(np.isnan(g[~finite]), np.isnan(w[~finite])) and \
            np.array_equal(g[~finite & ~np.isnan(w)], w[~finite & ~np.isnan(w)])
        if not nonfin_ok:
            return float("inf")
        g, w = g[finite], w[finite]
    if not np.isfinite(g).all():
        return float("inf")
    den = np.linalg.norm(w)
    num = np.linalg.norm(g - w)
    return float(num / den) if den > 0 else float(num)


def first_line(text):
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return ""


def run_case(m, args):
    t_wall = time.time()
    res = {"case": m["_id"], "model": m.get("model"), "shape": m.get("shape_tag"),
           "status": "ERROR", "reason": "", "rel_l2": None, "compile_s": None,
           "run_ms": None, "wall_s": None, "outputs": [],
           "ort_ms": (m.get("ort_timing") or {}).get("median_ms")}
    model = model_path_of(m)
    if not os.path.exists(model):
        res["status"], res["reason"] = "MISSING", f"model {model} not found; {HOW_TO_FETCH}"
        return res
    cmd = [args.kiln, "run", model]
    sym = symbolic_inputs(model) if args.shape_mode == "auto" else None
    for inp in m["inputs"]:
        f = os.path.join(m["_dir"], inp["file"])
        if not os.path.exists(f):
            res["status"], res["reason"] = "MISSING", f"input {f} not found; {HOW_TO_FETCH}"
            return res
        cmd += ["--input", f"{inp['name']}={f}"]
        if args.shape_mode == "always" or (args.shape_mode == "auto" and
                                           (sym is None or inp["name"] in sym)):
            cmd += ["--shape", f"{inp['name']}=" + "x".join(str(d) for d in inp["shape"])]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    if args.opt_level is not None:
        cmd += [f"-O{args.opt_level}"]
    if args.target:
        cmd += ["--target", args.target]
    tmp = tempfile.mkdtemp(prefix="kiln-models-")
    try:
        out_dir = os.path.join(tmp, "out")
        cmd += ["--output-dir", out_dir, "--json"]
        res["command"] = " ".join(cmd)
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, errors="replace",
                               timeout=args.timeout)
        except subprocess.TimeoutExpired:
            res["status"], res["reason"] = "TIMEOUT", f"kiln run took more than {args.timeout}s"
            return res
        finally:
            res["wall_s"] = round(time.time() - t_wall, 3)
        if p.returncode < 0:
            sig = -p.returncode
            try:
                sname = signal.Signals(sig).name
            except ValueError:
                sname = str(sig)
            res["status"] = "CRASH"
            res["reason"] = f"killed by {sname}" + (f": {first_line(p.stderr)}" if p.stderr else "")
            return res
        if p.returncode != 0:
            res["status"] = "ERROR" if p.returncode == 2 else "CRASH"
            reason = first_line(p.stderr) or f"exit status {p.returncode}"
            for prefix in ("kiln: error: ", f"{model}: "):  # keep the table readable
                if reason.startswith(prefix):
                    reason = reason[len(prefix):]
            res["reason"] = reason
            return res
        try:
            info = json.loads(p.stdout.strip().splitlines()[-1])
            res["compile_s"] = info.get("compile_s")
            res["run_ms"] = info.get("run_ms")
        except (ValueError, IndexError):
            res["status"], res["reason"] = "CRASH", f"kiln --json printed no JSON: {p.stdout[:200]!r}"
            return res
        worst, problems = 0.0, []
        for o in m["outputs"]:
            ref = np.load(os.path.join(m["_dir"], o["file"]))
            got_path = os.path.join(out_dir, sanitize(o["name"]) + ".npy")
            entry = {"name": o["name"], "ref_dtype": str(ref.dtype), "ref_shape": list(ref.shape)}
            res["outputs"].append(entry)
            if not os.path.exists(got_path):
                problems.append(f"{o['name']}: kiln wrote no output file")
                worst = float("inf")
                continue
            got = np.load(got_path)
            entry.update(dtype=str(got.dtype), shape=list(got.shape))
            if got.dtype != ref.dtype:
                problems.append(f"{o['name']}: dtype {got.dtype}, ORT {ref.dtype}")
                worst = float("inf")
                continue
            if got.shape != ref.shape:
                problems.append(f"{o['name']}: shape {list(got.shape)}, ORT {list(ref.shape)}")
                worst = float("inf")
                continue
            e = rel_l2(got, ref)
            entry["rel_l2"] = e
            worst = max(worst, e)
            if not e <= args.tol:
                problems.append(f"{o['name']}: rel-L2 {e:.3g} > {args.tol:g}")
        res["rel_l2"] = worst
        if args.keep_outputs:
            dst = os.path.join(args.keep_outputs, m["_id"].replace("/", "__"))
            shutil.rmtree(dst, ignore_errors=True)
            shutil.copytree(out_dir, dst)
        if problems:
            res["status"], res["reason"] = "FAIL", "; ".join(problems)
        else:
            res["status"] = "PASS"
        return res
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def fmt(v, spec):
    if v is None:
        return "-"
    if isinstance(v, float) and v == float("inf"):
        return "inf"
    return format(v, spec)


def print_table(results, file=sys.stdout):
    hdr = f"{'case':<42} {'rel-L2':>9} {'compile s':>9} {'run ms':>9} {'ORT ms':>8}  status"
    print(hdr, file=file)
    print("-" * len(hdr), file=file)
    for r in results:
        line = (f"{r['case']:<42} {fmt(r['rel_l2'], '.2e'):>9} {fmt(r['compile_s'], '.2f'):>9} "
                f"{fmt(r['run_ms'], '.1f'):>9} {fmt(r['ort_ms'], '.1f'):>8}  {r['status']}")
        if r["status"] != "PASS" and r["reason"]:
            line += f"  {r['reason'][:160]}"
        print(line, file=file)


def read_list(path):
    with open(path) as f:
        return [ln.strip() for ln in f if ln.strip() and not ln.lstrip().startswith("#")]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="\n".join(__doc__.splitlines()[1:]))
    ap.add_argument("--kiln", default=os.path.join(ROOT, "build", "kiln"))
    ap.add_argument("--only", action="append", help="model name (repeatable)")
    ap.add_argument("--filter", default="", help="substring of the case id")
    ap.add_argument("--jobs", type=int, default=1, help="cases run side by side (default 1)")
    ap.add_argument("--threads", type=int, default=0, help="kiln --threads (default: kiln's)")
    ap.add_argument("--opt-level", type=int, choices=[0, 1, 2, 3], default=None)
    ap.add_argument("--target", help="kiln --target (e.g. x86-64-v3 for the AVX2 schedules)")
    ap.add_argument("--tol", type=float, default=1e-4)
    ap.add_argument("--timeout", type=float, default=900, help="seconds per case")
    ap.add_argument("--shape-mode", choices=["auto", "always", "never"], default="auto",
                    help="pass --shape for symbolic inputs (auto), every input, or none")
    ap.add_argument("--expect", help="ratchet list: fail only if one of these fails")
    ap.add_argument("--write-passing", metavar="FILE")
    ap.add_argument("--json", metavar="FILE", help="write the results as JSON ('-': stdout)")
    ap.add_argument("--keep-outputs", metavar="DIR", help="copy kiln's outputs here")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()

    args.kiln = os.path.abspath(args.kiln)
    if not os.access(args.kiln, os.X_OK):
        log(f"error: kiln binary {args.kiln} not found (build it, or pass --kiln)")
        return 2
    refs = os.path.join(CACHE, "refs")
    cases = find_cases(refs) if os.path.isdir(refs) else []
    if not cases:
        log(f"error: no reference cases under {refs}; {HOW_TO_FETCH}")
        return 2
    all_ids = {m["_id"] for m in cases}
    cases = [m for m in cases if (not args.only or m.get("model") in args.only)
             and args.filter in m["_id"]]
    if not cases:
        log(f"error: no case matches --only/--filter (cases: {', '.join(sorted(all_ids))})")
        return 2
    log(f"{len(cases)} cases from {refs}, kiln {args.kiln}, jobs {args.jobs}, tol {args.tol:g}")

    t0 = time.time()
    results = {}
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as ex:
        futs = {ex.submit(run_case, m, args): m["_id"] for m in cases}
        for fut in concurrent.futures.as_completed(futs):
            r = fut.result()
            results[r["case"]] = r
            extra = "" if r["status"] == "PASS" else f"  {r['reason'][:200]}"
            print(f"{r['status']:<7} {r['case']}  rel-L2 {fmt(r['rel_l2'], '.2e')}  "
                  f"compile {fmt(r['compile_s'], '.2f')} s  run {fmt(r['run_ms'], '.1f')} ms  "
                  f"(wall {fmt(r['wall_s'], '.1f')} s){extra}", flush=True)
            if args.verbose and r.get("command"):
                print(f"        $ {r['command']}", flush=True)
    ordered = [results[m["_id"]] for m in cases]
    total_s = time.time() - t0
    print()
    print_table(ordered)
    n_pass = sum(r["status"] == "PASS" for r in ordered)
    counts = {}
    for r in ordered:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    summary = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
    print(f"\ncheck_models: {n_pass} of {len(ordered)} model cases pass ({summary}; "
          f"{total_s:.1f} s)")

    blockers = {}
    for r in ordered:
        if r["status"] == "ERROR":
            key = re.sub(r" \(node '[^']*'\)", "", r["reason"])
            blockers.setdefault(key, []).append(r["case"])
    if blockers:
        print("kiln refused (exit 2):")
        for key, ids in sorted(blockers.items(), key=lambda kv: -len(kv[1])):
            print(f"  {len(ids):>2} cases: {key[:150]}")

    rc = 0 if n_pass == len(ordered) else 1
    if args.expect:
        expected = read_list(args.expect)
        regress = []
        for cid in expected:
            r = results.get(cid)
            if r is None:
                if cid not in all_ids:
                    regress.append(f"{cid}: no reference case in {refs} ({HOW_TO_FETCH})")
                continue  # filtered out on purpose
            if r["status"] != "PASS":
                regress.append(f"{cid}: {r['status']} {r['reason']}")
        for line in regress:
            print(f"REGRESSION {line}", file=sys.stderr)
        new = sorted(cid for cid, r in results.items()
                     if r["status"] == "PASS" and cid not in expected)
        if new:
            print(f"newly passing (not in {args.expect}): {' '.join(new)}")
        print(f"{len(regress)} regressions against {args.expect} ({len(expected)} expected)")
        rc = 1 if regress else 0
    if args.write_passing:
        passing = {r["case"] for r in ordered if r["status"] == "PASS"}
        if os.path.exists(args.write_passing):  # keep listed cases that were not run now
            passing |= {cid for cid in read_list(args.write_passing) if cid not in results}
        passing = sorted(passing)
        with open(args.write_passing, "w") as f:
            f.write("# Model cases (refs/<model>/<shapetag>) that must pass: rel-L2 <= 1e-4 vs\n"
                    "# ONNX Runtime. Generated by scripts/check_models.py --write-passing.\n")
            f.writelines(p + "\n" for p in passing)
        log(f"wrote {len(passing)} passing cases to {args.write_passing}")
    if args.json:
        doc = {"cache": CACHE, "kiln": args.kiln, "tol": args.tol, "total_s": total_s,
               "passed": n_pass, "total": len(ordered), "results": ordered}
        text = json.dumps(doc, indent=1, default=lambda v: None)
        if args.json == "-":
            print(text)
        else:
            with open(args.json, "w") as f:
                f.write(text + "\n")
    return rc


if __name__ == "__main__":
    sys.exit(main())
