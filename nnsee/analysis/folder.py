"""The analysis folder: what may be written where, the marker that says a folder is an analysis, checkpoints.

```
DIR/analysis.json                    marker: format + fingerprint (written first, by rank 0)
DIR/ranks/rank-R/checkpoint.npz      accumulator states + progress of rank R (atomic; every shard)
DIR/ranks/rank-R/probabilities.npy   rank R's probabilities (its positions x classes), filled as it goes
DIR/maps/<method>/r<R>-<S>.npy       map shards (+ .positions.npy); class_means.npy
DIR/probabilities.npy                N x K float32, all ranks
DIR/summary.json                     written last: its presence means "complete"
```
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from nnsee.analysis.accumulators import Accumulators, differences
from nnsee.errors import RunError
from nnsee.io import atomic_write, atomic_write_text, clean_stale_tmp, is_tmp_name

FORMAT = "nnsee-analysis"
VERSION = 1
MARKER = "analysis.json"
SUMMARY = "summary.json"
MAPS = "maps"
OURS = {MARKER, SUMMARY, "ranks", MAPS, "probabilities.npy"}


def rank_dir(out: Path, rank: int) -> Path:
    return out / "ranks" / f"rank-{rank}"


def read_json(path: Path, what: str) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RunError(f"cannot read {what} {path}: {exc}; is it an nnsee analysis?") from exc
    if not isinstance(value, dict) or value.get("format") != FORMAT:
        raise RunError(f"{path} is not an nnsee analysis file (no format {FORMAT!r})")
    return value


def folder_problem(out: Path, resume: bool) -> str | None:
    """Why ``out`` cannot take this analysis (one line), or None. A fresh analysis needs a new or empty folder;
    ``resume`` needs a folder with an analysis marker. A folder with anything else in it is never written into."""
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        return f"{out} is not a folder: give --out a new or empty folder for the analysis"
    entries = sorted(os.listdir(out)) if out.is_dir() else []
    entries = [e for e in entries if not is_tmp_name(e)]
    foreign = [e for e in entries if e not in OURS]
    if foreign or (entries and MARKER not in entries):
        shown = ", ".join(repr(e) for e in (foreign or entries)[:3])
        return (f"{out} holds files that are not an nnsee analysis ({shown}); nothing there was changed: give --out a "
                "new or empty folder")
    if resume and not entries:
        return f"{out} holds no analysis to resume; run without --resume to start one"
    if entries and not resume:
        state = "a complete" if SUMMARY in entries else "an unfinished"
        return (f"{out} already holds {state} analysis; pass --resume to continue it, or give --out another folder "
                "(nothing was changed)")
    return None


def check_marker(out: Path, fingerprint: dict[str, Any]) -> None:
    """Refuse a resume whose run, data or options differ from the marker's (saying what changed)."""
    marker = read_json(out / MARKER, "the analysis marker")
    changed = differences(marker.get("fingerprint") or {}, fingerprint)
    if changed:
        raise RunError(f"cannot resume the analysis in {out}: {'; '.join(changed[:4])} changed since it began; "
                       "rerun with the same run, data and options, or give --out a new folder")


def clean_leftovers(out: Path) -> list[Path]:
    """Remove the temporary files killed writers left in the analysis (``out``, each rank's folder, each method's
    map folder). Call it on rank 0 only, before any rank writes (another writer's file in progress would go)."""
    subfolders = [str(p.relative_to(out)) for parent in (out / "ranks", out / MAPS) if parent.is_dir()
                  for p in parent.iterdir() if p.is_dir()]
    return clean_stale_tmp(out, subfolders=subfolders)


def write_marker(out: Path, fingerprint: dict[str, Any]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / MARKER, json.dumps({"format": FORMAT, "version": VERSION, "fingerprint": fingerprint},
                                               indent=1, sort_keys=True))


def save_checkpoint(folder: Path, acc: Accumulators, progress: dict[str, Any]) -> None:
    """One atomic npz: every accumulator's state and ``progress`` (JSON)."""
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {**acc.state(), "progress": np.array(json.dumps(progress))}

    def write(tmp: Path) -> None:
        with open(tmp, "xb") as f:
            np.savez(f, **arrays)

    atomic_write(folder / "checkpoint.npz", write)


def load_checkpoint(folder: Path, fingerprint: dict[str, Any]) -> tuple[Accumulators, dict[str, Any]] | None:
    """(accumulators, progress) of the checkpoint in ``folder``, None when there is none; refused when it was made
    for another run, data set or options."""
    file = folder / "checkpoint.npz"
    if not file.exists():
        return None
    try:
        with np.load(file, allow_pickle=False) as z:
            flat = {key: z[key] for key in z.files}
        progress = json.loads(str(flat.pop("progress")))
        acc = Accumulators.from_state(flat)
    except (OSError, ValueError, KeyError) as exc:
        raise RunError(f"cannot read the checkpoint {file}: {exc}; give --out a new folder to start again") from exc
    changed = differences(acc.fingerprint, fingerprint)
    if changed:
        raise RunError(f"cannot resume from {file}: {'; '.join(changed[:4])} changed since it was written; rerun "
                       "with the same run, data and options, or give --out a new folder")
    return acc, progress
