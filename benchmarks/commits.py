"""``python -m benchmarks.commits BEFORE AFTER [--only S ...] [--rounds N] [-- OPTIONS]``: two commits' benchmarks,
interleaved in one run, and whether AFTER is slower beyond the noise.

Each commit is checked out in a temporary git worktree; each benchmark section runs once per round for each commit,
in the order ABBA… (a slow spell of the machine hits both), each time as ``python -m benchmarks --only S --json``
in a fresh process with the same interpreter. Every target is a ratio to a peer measured side by side in the same
process, so the two commits are compared by their targets' median values over the rounds. A target is *worse*
when its median moves toward its bound (up for ``<=``, down for ``>=``) by more than ``--noise`` (default 15%, about
what these ratios move between runs) of the larger of its value and its bound (:func:`toward_bound`); the exit
status is 1 when any target is worse, else 0.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from statistics import median

from benchmarks.__main__ import ONLY

SECTIONS = ("mlp", "lbfgs", "report", "occlusion", "gradients", "ig", "top9")
assert set(SECTIONS) <= set(ONLY)


def _worktree(repo: Path, commit: str, root: Path) -> Path:
    path = root / commit.replace("/", "_")
    subprocess.run(["git", "-C", str(repo), "worktree", "add", "--detach", str(path), commit], check=True,
                   capture_output=True)
    return path


def _run(tree: Path, section: str, out: Path, extra: list[str]) -> dict[str, float | None]:
    """``{target name: value}`` of one section run in ``tree`` (its own nnsee and benchmarks)."""
    command = [sys.executable, "-m", "benchmarks", "--only", section, "--json", str(out), "--max-wait", "0", *extra]
    done = subprocess.run(command, cwd=tree, env={**os.environ, "PYTHONPATH": str(tree)}, capture_output=True,
                          text=True)
    if not out.is_file():
        raise SystemExit(f"{tree.name} {section} wrote no results (exit {done.returncode}):\n{done.stderr[-2000:]}")
    results = json.loads(out.read_text())
    return {t["name"]: t["value"] for s in results["sections"] for t in s["targets"]}


def _ops(out: Path) -> dict[str, tuple[str, float]]:
    results = json.loads(out.read_text())
    return {t["name"]: (t["op"], float(t["bound"])) for s in results["sections"] for t in s["targets"]}


def toward_bound(op: str, bound: float, before: float, after: float) -> float:
    """How far ``after`` moved toward the target's bound from ``before`` (> 0: worse), as a share of the larger of
    ``|before|`` and ``|bound|``: a speed-up of 21x over a bound of 5x is judged by its own size, a correctness
    figure of 1e-7 under a bound of 1e-5 by the bound's."""
    scale = max(abs(before), abs(bound))
    if not scale:
        return 0.0
    return (after - before if op == "<=" else before - after) / scale


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.commits", description=__doc__.splitlines()[0])
    parser.add_argument("before")
    parser.add_argument("after")
    parser.add_argument("--only", nargs="+", choices=SECTIONS, default=list(SECTIONS))
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--noise", type=float, default=0.15)
    parser.add_argument("--json", type=Path, help="also write every value to this file")
    argv = list(sys.argv[1:] if argv is None else argv)
    cut = argv.index("--") if "--" in argv else len(argv)
    args, extra = parser.parse_args(argv[:cut]), argv[cut + 1 :]  # after --: options for python -m benchmarks
    repo = Path(subprocess.run(["git", "rev-parse", "--show-toplevel"], capture_output=True, text=True,
                               check=True).stdout.strip())
    values: dict[str, dict[str, dict[str, list[float]]]] = {}
    ops: dict[str, tuple[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-commits-") as tmp:
        root = Path(tmp)
        trees = {"before": _worktree(repo, args.before, root), "after": _worktree(repo, args.after, root)}
        try:
            for r in range(args.rounds):
                for section in args.only:
                    for which in (("before", "after") if r % 2 == 0 else ("after", "before")):
                        out = root / f"{which}-{section}-{r}.json"
                        print(f"round {r + 1}/{args.rounds}: {section} at {which}", file=sys.stderr, flush=True)
                        for name, value in _run(trees[which], section, out, extra).items():
                            if value is not None:
                                values.setdefault(section, {}).setdefault(name, {}).setdefault(which, []).append(
                                    float(value))
                        ops.update(_ops(out))
        finally:
            for tree in trees.values():
                subprocess.run(["git", "-C", str(repo), "worktree", "remove", "--force", str(tree)],
                               capture_output=True)
    worse = []
    print(f"{'target':72s} {'before':>9s} {'after':>9s} {'change':>8s}")
    for section, targets in values.items():
        print(f"[{section}]")
        for name, by in targets.items():
            if "before" not in by or "after" not in by:
                print(f"{name[:72]:72s} (measured at one commit only)")
                continue
            b, a = median(by["before"]), median(by["after"])
            change = a / b - 1 if b else 0.0
            flag = "  WORSE" if toward_bound(*ops[name], b, a) > args.noise else ""
            if flag:
                worse.append(name)
            print(f"{name[:72]:72s} {b:9.3f} {a:9.3f} {change:+8.1%}{flag}")
    if args.json:
        args.json.write_text(json.dumps({"before": args.before, "after": args.after, "values": values}, indent=1))
    print(f"{len(worse)} target(s) worse by more than {args.noise:.0%}" + (": " + "; ".join(worse) if worse else ""))
    return int(bool(worse))


if __name__ == "__main__":
    sys.exit(main())
