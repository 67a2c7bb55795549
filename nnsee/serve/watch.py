"""``nnsee serve --watch RUN``: a page that follows one run folder while another process trains into it.

No training code runs here. :class:`RunWatcher` re-reads ``RUN/run.json`` and ``RUN/model.safetensors`` when their
``(inode, size, mtime)`` change, and draws what changed: the learning curves, the class templates (a linear first
layer's rows, or the effective ``(W_L ⋯ W_1)[k]`` of a deeper chain) and the first hidden units' incoming weights (a
CNN: its first-layer filters). The trainer writes the weights, then ``run.json``, each by an atomic rename, and both
carry the save's ``save_id``; a read that finds them from different saves, a file that is missing, half written by
another program or being replaced, or a folder that does not exist yet, keeps what was shown last (or the waiting
state) and is tried again at the next poll: never an error answer. Only that folder is read.

The page polls ``GET /api/watch?since=VERSION`` every second (a plain request, not server-sent events: the server's
connection limits and header deadlines stay as they are for every other page, Ctrl-C never waits on an open stream,
and an unchanged state costs a stat of two files and a few bytes). ``version`` counts the states read; an answer to
the page's current version says only ``changed: false``.
"""

from __future__ import annotations

import base64
import os
import threading
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import FastAPI
from fastapi.responses import FileResponse

from nnsee.render import data_uri, grid, symmetric_scale, weight_tile
from nnsee.render.svg import learning_curves_svg
from nnsee.serve.pool import WorkPool

STATIC = Path(__file__).parent / "static"
WATCHED = ("run.json", "model.safetensors")
MAX_UNITS = 32  # hidden units (or filters) shown


def svg_uri(svg: str) -> str:
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode()


class RunWatcher:
    """The state of the run folder ``folder`` as the page shows it, re-read when its files change."""

    def __init__(self, folder: str | os.PathLike[str], max_units: int = MAX_UNITS) -> None:
        self.folder = Path(folder)
        self.max_units = max_units
        self.version = 0
        self.seen: tuple | None = None  # the signature of the files last read
        self.state: dict[str, Any] = {"status": "waiting", "epoch": None}
        self.note = ""
        self.lock = threading.Lock()

    def signature(self) -> tuple | None:
        """``(inode, size, mtime_ns)`` of each watched file, or None while one is missing."""
        try:
            stats = [os.stat(self.folder / name) for name in WATCHED]
        except OSError:
            return None
        return tuple((s.st_ino, s.st_size, s.st_mtime_ns) for s in stats)

    def poll(self, since: int | None = None) -> dict[str, Any]:
        """The current state (re-read first if the files changed); only ``changed: false`` if it is ``since``."""
        with self.lock:
            self._refresh()
            head = {"version": self.version, "folder": self.folder.name, "note": self.note,
                    "status": self.state["status"], "epoch": self.state["epoch"]}
            if since == self.version:
                return {**head, "changed": False}
            return {**self.state, **head, "changed": True}

    def _refresh(self) -> None:
        sig = self.signature()
        if sig is None:
            self.note = (f"waiting for a run in {self.folder.name}: nnsee train ... --out {self.folder}"
                         if self.seen is None else "a file of the run is missing or being replaced; retrying")
            return
        if sig == self.seen:
            return
        try:
            state = self._read()
        except _Retry as e:
            self.note = str(e)
            return
        except Exception as e:  # a half-written or foreign file: keep what is shown, try again at the next poll
            self.note = f"could not read the run yet ({' '.join(str(e).split())[:300]}); retrying"
            return
        if self.signature() != sig:  # replaced while it was read: read the new files at the next poll
            self.note = "the run changed while it was read; retrying"
            return
        self.seen, self.state, self.note = sig, state, ""
        self.version += 1

    def _read(self) -> dict[str, Any]:
        from nnsee.models.capabilities import capabilities
        from nnsee.serve import views
        from nnsee.train.run import load_run

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            run = load_run(self.folder)
        if any("different save" in str(w.message) for w in caught):
            raise _Retry("the trainer is between its weights and its run.json; retrying")
        loaded = views.LoadedRun(self.folder.name, run, capabilities(run.model, tuple(run.input_shape)))
        history = {k: [None if v is None else float(v) for v in vals] for k, vals in run.history.items()
                   if isinstance(vals, list)}
        loss, accuracy = learning_curves_svg(history)
        state: dict[str, Any] = {
            "status": "ready", "epoch": run.epoch, "class_names": run.class_names, "kind": loaded.kind,
            "history": history, "curves": {"loss": svg_uri(loss), "accuracy": svg_uri(accuracy)},
            "planned": run.config.get("epochs"), "templates": None, "units": None,
        }
        if loaded.caps.templates:
            state["templates"] = views.templates(loaded)
        state["units"] = self._units(loaded)
        return state

    def _units(self, loaded: Any) -> dict[str, Any] | None:
        """The first hidden units' incoming weights (a dense chain) or the first conv layer's filters (a CNN), on
        one shared scale, as one image."""
        from torch import nn

        from nnsee.methods import incoming_weights

        model, caps = loaded.run.model, loaded.caps
        if caps.hidden_units:
            layer = caps.hidden_layers[0]
            w = incoming_weights(model, loaded.shape, layer)
            what = f"incoming weights of the first {min(len(w), self.max_units)} of {len(w)} units of {layer}"
        else:
            convs = [(n, m) for n, m in model.named_modules()
                     if isinstance(m, nn.Conv2d) and m.in_channels == loaded.shape[0]]
            if not convs:
                return None
            layer = convs[0][0]
            w = convs[0][1].weight.detach().cpu().numpy()
            what = f"the first {min(len(w), self.max_units)} of {len(w)} filters of {layer}"
        w = np.asarray(w[: self.max_units], dtype=np.float32)
        scale = symmetric_scale(w)
        up = max(2, round(56 / w.shape[-1]))
        image = grid([weight_tile(t, scale, up) for t in w], ncols=min(8, len(w)), pad=2)
        return {"layer": layer, "what": what, "scale": scale, "src": data_uri(image)}


class _Retry(Exception):
    """The run folder is between two consistent states."""


def add_routes(app: FastAPI, jobs: WorkPool, folder: str | os.PathLike[str]) -> RunWatcher:
    """``GET /watch`` (the page) and ``GET /api/watch?since=VERSION`` (its state) for the run folder ``folder``."""
    from nnsee.serve.app import in_pool

    watcher = RunWatcher(folder)

    @app.get("/watch", include_in_schema=False)
    def watch_page() -> FileResponse:
        return FileResponse(STATIC / "watch.html", media_type="text/html")

    @app.get("/api/watch")
    async def watch_state(since: int | None = None) -> dict:
        return await in_pool(jobs, lambda: watcher.poll(since))

    return watcher
