#!/usr/bin/python3
"""Writes docs/CONFORMANCE.md (markdown, on stdout) from kiln_node_tests --results TSV.

The TSV has one line per ONNX backend node test: NAME <tab> PASS|FAIL <tab> REASON.
The page gives the overall pass count, a table per ONNX op (pass/total) and every failing
test with its reason, grouped by op.

A test's op is read from its model (ROOT/node/<test>/model.onnx, ROOT from --tests or
${KILN_CACHE:-~/.cache/kiln}/onnx-node-tests): the op of a single-node graph; for
`*_expanded` tests (a function op written out as its body) the op of the unexpanded test
of the same name; otherwise the op whose snake_case name is the longest prefix of the test
name. Without the models (or python3-onnx) the name rule alone is used.
The output is deterministic (no dates), so regenerating it only changes what changed.

Usage: /usr/bin/python3 scripts/conformance_report.py RESULTS.tsv [--tests ROOT] > docs/CONFORMANCE.md
"""
import argparse
import os
import re
import sys
from collections import OrderedDict, defaultdict

CACHE = os.environ.get("KILN_CACHE", os.path.expanduser("~/.cache/kiln"))


def norm(s):
    return re.sub(r"[^a-z0-9]", "", s.lower())


def read_results(path):
    rows = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for lineno, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line.strip() or line.startswith("#"):
                continue
            parts = line.split("\t", 2)
            if len(parts) < 2 or parts[1] not in ("PASS", "FAIL"):
                sys.exit(f"conformance_report: {path}:{lineno}: expected NAME\\tPASS|FAIL\\tREASON, "
                         f"got {line[:120]!r}")
            rows.append((parts[0], parts[1] == "PASS", parts[2] if len(parts) > 2 else ""))
    return rows


class OpResolver:
    def __init__(self, node_dir):
        self.node_dir = node_dir
        self.onnx = None
        try:
            import onnx  # noqa: F401
            self.onnx = onnx
        except ImportError:
            print("conformance_report: python3-onnx not found; ops from test names only",
                  file=sys.stderr)
        names = set()
        if self.onnx is not None:
            names = {s.name for s in self.onnx.defs.get_all_schemas_with_history()}
        self.schema_names = sorted(names, key=lambda n: -len(norm(n)))
        self.cache = {}

    def model_ops(self, test):
        """Op types of the top-level nodes of test's model (None if unavailable)."""
        if self.onnx is None or not self.node_dir:
            return None
        path = os.path.join(self.node_dir, test, "model.onnx")
        if not os.path.exists(path):
            return None
        try:
            m = self.onnx.load(path, load_external_data=False)
        except Exception:  # noqa: BLE001 - a broken test model: fall back to the name
            return None
        return list(OrderedDict.fromkeys(n.op_type for n in m.graph.node))

    def by_name(self, base, candidates):
        key = norm(base)
        best = None
        for c in candidates:
            n = norm(c)
            if n and key.startswith(n) and (best is None or len(n) > len(norm(best))):
                best = c
        return best

    def op(self, test):
        if test in self.cache:
            return self.cache[test]
        base = test[len("test_"):] if test.startswith("test_") else test
        result = None
        if base.endswith("_expanded"):
            result = self.op("test_" + base[: -len("_expanded")])
        else:
            ops = self.model_ops(test)
            if ops and len(ops) == 1:
                result = ops[0]
            elif ops:
                result = self.by_name(base, ops) or self.by_name(base, self.schema_names)
                if result is None:
                    result = ops[-1]
            else:
                result = self.by_name(base, self.schema_names)
        if result is None:
            result = base.split("_")[0] or test
        self.cache[test] = result
        return result


def category(reason):
    r = reason.lower()
    if r.startswith("unsupported:"):
        if "unknown op" in r or "unsupported op" in r:
            return "op not implemented"
        return "refused (user error)"
    if r.startswith("wrong result"):
        return "wrong result"
    if r.startswith("internal error"):
        return "internal error"
    if r.startswith("crashed"):
        return "crash"
    if r.startswith("timeout"):
        return "timeout"
    if r.startswith("exception"):
        return "exception"
    return "other"


def md_escape(s):
    return s.replace("\\", "\\\\").replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;") \
            .replace("`", "'")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results")
    ap.add_argument("--tests", default=os.path.join(CACHE, "onnx-node-tests"),
                    help="folder of the node tests (holding node/test_*/model.onnx)")
    args = ap.parse_args()

    rows = read_results(args.results)
    node_dir = args.tests
    if os.path.isdir(os.path.join(node_dir, "node")):
        node_dir = os.path.join(node_dir, "node")
    if not os.path.isdir(node_dir):
        print(f"conformance_report: no test models under {args.tests}; ops from test names only",
              file=sys.stderr)
        node_dir = None
    res = OpResolver(node_dir)

    per_op = defaultdict(lambda: [0, 0])
    failing = defaultdict(list)
    cats = defaultdict(int)
    for name, ok, reason in rows:
        op = res.op(name)
        per_op[op][1] += 1
        if ok:
            per_op[op][0] += 1
        else:
            failing[op].append((name, reason))
            cats[category(reason)] += 1

    total = len(rows)
    passed = sum(ok for _, ok, _ in rows)
    plain = [r for r in rows if not r[0].endswith("_expanded")]
    plain_pass = sum(ok for _, ok, _ in plain)
    ops_full = sum(1 for p, t in per_op.values() if p == t)
    ops_some = sum(1 for p, t in per_op.values() if 0 < p < t)
    pct = (100.0 * passed / total) if total else 0.0

    out = []
    w = out.append
    w("# ONNX conformance")
    w("")
    w("kiln against the ONNX backend node tests (Debian python3-onnx 1.12, opsets up to 17;")
    w("outputs compared with rtol 1e-3, atol 1e-7). Generated by `scripts/update_conformance.sh`")
    w("(`kiln_node_tests --results` + `scripts/conformance_report.py`); do not edit by hand.")
    w("")
    w(f"**{passed} of {total} tests pass ({pct:.1f}%)** — {plain_pass} of {len(plain)} "
      f"without the `_expanded` variants. Ops: {ops_full} of {len(per_op)} fully passing, "
      f"{ops_some} partly, {len(per_op) - ops_full - ops_some} not at all.")
    w("")
    if cats:
        w("| failure kind | tests |")
        w("|---|---:|")
        for k, v in sorted(cats.items(), key=lambda kv: (-kv[1], kv[0])):
            w(f"| {k} | {v} |")
        w("")
    w("## Per op")
    w("")
    w("| op | pass | total | |")
    w("|---|---:|---:|---|")
    for op in sorted(per_op, key=str.lower):
        p, t = per_op[op]
        mark = "all" if p == t else ("none" if p == 0 else "partial")
        w(f"| {md_escape(op)} | {p} | {t} | {mark} |")
    w("")
    w("## Failing tests")
    w("")
    if not failing:
        w("None.")
    for op in sorted(failing, key=str.lower):
        fl = failing[op]
        p, t = per_op[op]
        w(f"### {md_escape(op)} ({len(fl)} of {t} failing)")
        w("")
        w("| test | reason |")
        w("|---|---|")
        for name, reason in sorted(fl):
            # Machine-specific cache paths would make the committed page differ per machine.
            reason = re.sub(r"\S*/(test_[^/\s]+)/model\.onnx", r"\1/model.onnx", reason)
            w(f"| `{name}` | {md_escape(reason) or '(no reason given)'} |")
        w("")
    sys.stdout.write("\n".join(out).rstrip("\n") + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
