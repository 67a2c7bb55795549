"""``nnsee analyze RUN --out DIR``: the click command (registered in :mod:`nnsee.cli`; heavy imports deferred)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from nnsee.cli import _names_list, _print_json, _spec, data_options, device_option, run_split


def _method_options(items: tuple[str, ...]) -> dict[str, dict[str, str]]:
    """``METHOD.NAME=VALUE`` items as ``{method: {name: value}}`` (values checked by the method's own options)."""
    options: dict[str, dict[str, str]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        method, dot, name = key.strip().rpartition(".")
        if not sep or not dot or not method or not name:
            raise click.BadParameter(f"expected METHOD.NAME=VALUE such as integrated-gradients.steps=16, got {item!r}",
                                     param_hint="--option")
        options.setdefault(method, {})[name] = value.strip()
    return options


def _terminate_as_interrupt() -> None:
    """SIGTERM (a kill, a scheduler) stops the pass as Ctrl-C does: at a clean point, with one line."""
    import contextlib
    import signal

    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    with contextlib.suppress(ValueError):  # not the main thread
        signal.signal(signal.SIGTERM, handler)


@click.command("analyze")
@click.argument("run", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--data", "spec", default=None, callback=_spec, help="Analyze this SPEC (default: the run's own data).")
@click.option("--split", type=click.Choice(["test", "val", "train"]), default="test", show_default=True)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="The analysis folder (new or empty; with --resume, the interrupted analysis).")
@click.option("--layers", default=None, metavar="NAMES", help="Layers whose top-k images per channel to find, "
              "comma-separated dotted names (see `nnsee layers RUN`).")
@click.option("--k", type=click.IntRange(1, 1000), default=9, show_default=True, help="Top images per channel.")
@click.option("--methods", default=None, metavar="NAMES", help="Attribution methods whose maps to write, "
              "comma-separated (see `nnsee methods`); target: each image's true class.")
@click.option("--option", "method_options", multiple=True, metavar="METHOD.NAME=VALUE",
              help="An option of one of --methods, e.g. integrated-gradients.steps=16 (see `nnsee methods`).")
@click.option("--batch-size", type=click.IntRange(1, 2**20), default=None,
              help="Images per batch (default: from free GPU memory on CUDA, else a memory bound).")
@click.option("--shard-size", type=click.IntRange(1, 2**24), default=None,
              help="Images per map shard and checkpoint (default: about 4,096, fewer for large maps).")
@click.option("--resume", is_flag=True, help="Continue the interrupted analysis in --out from its checkpoints.")
@click.option("--progress/--no-progress", default=None, help="A progress bar on stderr (default: on a terminal).")
@click.option("--json", "as_json", is_flag=True, help="Print a short summary as one JSON object.")
@data_options
@device_option
def analyze_command(run: Path, spec: str | None, split: str, out: Path, layers: str | None, k: int,
                    methods: str | None, method_options: tuple[str, ...], batch_size: int | None,
                    shard_size: int | None, resume: bool, progress: bool | None, as_json: bool, device: str,
                    **data_opts: Any) -> None:
    """One pass over a data split: predictions, probabilities, confusion matrix, top-k images per channel of
    --layers, maps of --methods in shards, mean map per class. Under torchrun, split over the ranks."""
    from nnsee.analysis import analyze
    from nnsee.distributed import setup, teardown
    from nnsee.train import load_run

    workers = int(data_opts.pop("workers", 0) or 0)
    chosen_layers = _names_list(layers, "--layers") if layers is not None else []
    chosen_methods = _names_list(methods, "--methods") if methods is not None else []
    options = _method_options(method_options)
    dist = setup(device)
    if dist is None:
        _terminate_as_interrupt()
    try:
        loaded = load_run(run, device=str(dist.device) if dist is not None else device)
        data = run_split(loaded, spec, split, data_opts)
        identity = {"run": {"class_names": loaded.class_names},
                    "data": {"spec": spec, "split": split}}
        try:
            result = analyze(loaded.model, data, out, standardizer=loaded.standardizer, layers=chosen_layers, k=k,
                             methods=chosen_methods, batch_size=batch_size, workers=workers, resume=resume,
                             device=device, dist=dist, identity=identity, progress=progress, shard_size=shard_size,
                             method_options=options)
        except KeyboardInterrupt:
            why = "interrupted" if dist is None else f"rank {dist.rank} stopped (a rank failed, or torchrun stopped it)"
            click.echo(f"error: {why}; the analysis in {out} keeps its last checkpoints and has no summary.json: "
                       "continue it with the same command and --resume", err=True)
            sys.exit(130)
    finally:
        teardown(dist)
    if dist is not None and not dist.is_main:
        return
    s = result.summary
    if as_json:
        _print_json({"out": str(out), "n": s["n"], "n_skipped": s["n_skipped"], "accuracy": s["accuracy"],
                     "layers": list(s["layers"]), "methods": list(s["methods"]), "world_size": s["world_size"],
                     "seconds": s["seconds"]})
        return
    accuracy = "n/a" if s["accuracy"] is None else f"{s['accuracy']:.4f}"
    click.echo(f"analyzed {s['n']} images ({s['n_skipped']} skipped): accuracy {accuracy}; "
               f"written {out / 'summary.json'}")
