"""``python -m benchmarks [--quick] [--only NAME] [--json PATH]``: run the benchmarks, judge their targets.

The full run takes several minutes (10 interleaved epochs of four contenders at two batch sizes, then L-BFGS, the
report, and the attribution methods side by side with Captum). ``--quick`` self-tests the harness on small sizes in
about a minute: its speed figures are not judged, its correctness targets (maps against independent references) are.
The exit status is 1 when any judged target fails, 0 otherwise.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

ONLY = ("mlp", "lbfgs", "report", "report-memory", "attribution", "occlusion", "gradients", "ig", "top9", "deep",
        "deep-occlusion", "deep-ig", "deep-views", "streaming", "stream-analyze", "stream-workers",
        "stream-torchrun")


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="small sizes and few epochs: self-tests the harness (speed not judged)")
    parser.add_argument("--only", choices=ONLY, help="run only this benchmark (attribution: all four of "
                        "occlusion, gradients, ig, top9; deep: deep-occlusion, deep-ig, deep-views on ResNet-18 at "
                        "224 px; streaming: stream-analyze, stream-workers, stream-torchrun over whole data sets)")
    parser.add_argument("--epochs", type=int, help="MLP epochs (default 10; --quick 2)")
    parser.add_argument("--batch-sizes", type=int, nargs="+", help="MLP batch sizes (default 128 256)")
    parser.add_argument("--repeats", type=int, help="L-BFGS repeats (default 3; --quick 1)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-public-check", action="store_true",
                        help="skip re-running the public fit() alone after the interleaved MLP run")
    parser.add_argument("--threads", type=int, help="threads for torch and the BLAS under numpy (default: all cores)")
    parser.add_argument("--max-wait", type=float, metavar="S",
                        help="seconds in all to wait for other processes to leave the CPU idle before rounds "
                        "(default 120; --quick 0)")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the results as JSON to PATH")
    args = parser.parse_args(argv)

    import contextlib

    import torch
    from threadpoolctl import threadpool_limits

    if args.threads:
        torch.set_num_threads(args.threads)
    with threadpool_limits(args.threads) if args.threads else contextlib.nullcontext():
        return _run(args, torch)


def _run(args: argparse.Namespace, torch: Any) -> int:
    from benchmarks import attribution, deep, lbfgs_softmax, mlp_epoch, report_memory, report_time, streaming
    from benchmarks.common import CpuWatch, IdleGate, busy_warning, exit_status, load_fashion_mnist

    quick = args.quick
    epochs = args.epochs or (2 if quick else 10)
    batch_sizes = args.batch_sizes or [128, 256]
    repeats = args.repeats or (1 if quick else 3)
    iterations = 20 if quick else 100
    gate = IdleGate(args.max_wait if args.max_wait is not None else (0.0 if quick else 120.0), log=_log)
    started = time.perf_counter()
    if args.only in (None, "mlp", "lbfgs"):
        _log("loading Fashion-MNIST through nnsee's loader ...")
        data = load_fashion_mnist(n_train=6000 if quick else None, n_test=2000 if quick else None, seed=args.seed)

    sections = []
    if args.only in (None, "mlp"):
        _log(f"MLP: {epochs} interleaved epochs per batch size {batch_sizes}")
        watch = CpuWatch()
        sections.append(mlp_epoch.run(data, batch_sizes, epochs, args.seed, quick,
                                      check_public=not quick and not args.no_public_check, gate=gate, log=_log))
        sections[-1].others_cores, sections[-1].seconds = watch.others_cores(), watch.elapsed()
    if args.only in (None, "lbfgs"):
        _log(f"L-BFGS softmax: {iterations} iterations, {repeats} interleaved repeats")
        watch = CpuWatch()
        sections.append(lbfgs_softmax.run(data, iterations, repeats, args.seed, quick, gate=gate, log=_log))
        sections[-1].others_cores, sections[-1].seconds = watch.others_cores(), watch.elapsed()
    if args.only in (None, "report"):
        _log("report vs training epochs: 3 alternating rounds")
        watch = CpuWatch()
        sections.append(report_time.run(1 if quick else 3, args.seed, quick, gate=gate, log=_log))
        sections[-1].others_cores, sections[-1].seconds = watch.others_cores(), watch.elapsed()
    if args.only in (None, "report-memory"):
        _log("report memory at 224 px: the ResNet-18 shape over RGB photos, in a child")
        watch = CpuWatch()
        sections.append(report_memory.run(quick, args.seed, gate=gate, log=_log))
        sections[-1].others_cores, sections[-1].seconds = watch.others_cores(), watch.elapsed()
    if args.only is None or args.only == "attribution" or args.only in attribution.BENCHES:
        _log("attribution methods vs Captum and plain autograd, interleaved")
        only = attribution.BENCHES if args.only in (None, "attribution") else (args.only,)
        sections.extend(attribution.run(quick, args.seed, gate=gate, log=_log, only=only))
    if args.only is None or args.only == "deep" or args.only in deep.BENCHES:
        _log("deep nets (ResNet-18 at 224 px): occlusion, integrated gradients, top-9, interleaved")
        names = tuple(deep.BENCHES) if args.only in (None, "deep") else (args.only,)
        sections.extend(deep.run(quick, args.seed, gate=gate, log=_log, only=names))
    if args.only is None or args.only == "streaming" or args.only in streaming.BENCHES:
        _log("whole data sets: streaming analyze, DataLoader workers, torchrun, interleaved")
        names = tuple(streaming.BENCHES) if args.only in (None, "streaming") else (args.only,)
        sections.extend(streaming.run(quick, args.seed, gate=gate, log=_log, only=names))
    for s in sections:
        warning = busy_warning(s.others_cores)
        if warning:
            s.notes.insert(0, warning)

    import sklearn

    env = (f"torch {torch.__version__} ({torch.get_num_threads()} threads), scikit-learn {sklearn.__version__}, "
           f"numpy {__import__('numpy').__version__}, Python {platform.python_version()}, {platform.machine()}")
    print()
    print(f"nnsee benchmarks{' (--quick)' if quick else ''}: {env}")
    for s in sections:
        print()
        print(s.render())
    busy = [s.others_cores for s in sections if busy_warning(s.others_cores)]
    if busy:
        print()
        print(busy_warning(max(busy)))
    targets = [t for s in sections for t in s.targets]
    judged = [t for t in targets if t.passed is not None]
    failed = [t for t in judged if not t.passed]
    print()
    print(f"targets: {len(judged) - len(failed)}/{len(judged)} pass"
          + (f" ({len(targets) - len(judged)} not judged)" if len(judged) < len(targets) else "")
          + f"; total {time.perf_counter() - started:.0f}s")
    if failed:
        print("failed targets (exit status 1):")
        for t in failed:
            print(t.line())
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"quick": quick, "env": env, "sections": [s.to_dict() for s in sections]},
                                        indent=1, default=float))
        print(f"results written to {args.json}")
    return exit_status(targets)


if __name__ == "__main__":
    sys.exit(main())
