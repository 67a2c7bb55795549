"""``Explorer(runs)``: draw or upload an image in a notebook and see each run's prediction, probabilities and maps.

Built on anywidget: one ES module (``widget.js``) and its CSS (``widget.css``) ship inside this package and the state
below is synced as traitlets over the standard Jupyter widget protocol (ipywidgets' comm), which JupyterLab, VS Code
and Colab implement: no server of ours runs and nothing is fetched from a CDN.

The page sends each stroke or upload as PNG bytes (``image``, throttled there); the kernel decodes them with the live
page's rules and limits (:mod:`nnsee.serve.decode`, the body limit of :data:`nnsee.serve.app.MAX_BODY`) and answers
with the live page's own JSON-ready dicts (:func:`nnsee.serve.views.explain_image`, one per run, in ``results``;
:func:`~nnsee.serve.views.unit_card` in ``card`` when a unit is clicked), so the widget and the page show the same
numbers. Every refusal is one line in ``error``; ``done`` counts the answers (the page waits for it between sends).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anywidget
import traitlets

from nnsee.errors import NnseeError
from nnsee.models.adopted import resize_rule
from nnsee.models.capabilities import capabilities
from nnsee.serve import views
from nnsee.serve.app import MAX_BODY, _names
from nnsee.serve.decode import ImageRejected, decode_bytes, is_blank
from nnsee.serve.guard import over_limit
from nnsee.train.run import Run

__all__ = ["Explorer"]

HERE = Path(__file__).parent
RunLike = Run | str | os.PathLike[str]


def _bytes_from_json(value: Any, widget: Any) -> bytes:
    """The page's binary buffer (a memoryview from the comm) as ``bytes``; ``None`` as no image."""
    return b"" if value is None else bytes(value)


def _one_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__


def _load(run: RunLike, name: str) -> views.LoadedRun:
    if isinstance(run, Run):
        if run.input_shape is None:
            raise NnseeError(f"run {name!r} records no input shape; load it with nnsee.train.load_run(folder)")
        return views.LoadedRun(name, run, capabilities(run.model, tuple(run.input_shape)))
    return views.load(Path(run), name)


class Explorer(anywidget.AnyWidget):
    """One or two runs side by side: a canvas (white on black) and an upload button; each image gives every run's
    prediction, softmax probabilities ``p_k = exp(z_k) / Σ_j exp(z_j)`` and the chosen method's maps; a click on an
    MLP's hidden unit ``j`` gives its card (incoming weights ``W_in[j]``, outgoing weights ``W_out[:, j]``, bias)."""

    _esm = HERE / "widget.js"
    _css = HERE / "widget.css"

    runs = traitlets.List(help="each run's summary (name, kind, class names, views), as the live page lists them") \
        .tag(sync=True)
    views = traitlets.List(traitlets.Unicode(), help="the methods any shown run can show").tag(sync=True)
    view = traitlets.Unicode("", help="the chosen method ('' = each run's default)").tag(sync=True)
    image = traitlets.Bytes(b"", help="the image to explain (PNG, JPEG, ... bytes)").tag(sync=True,
                                                                                         from_json=_bytes_from_json)
    results = traitlets.List(help="explain_image's dict for each run, in order").tag(sync=True)
    unit = traitlets.Dict(help="the clicked unit: {'run': name, 'unit': j}").tag(sync=True)
    card = traitlets.Dict(help="unit_card's dict for the clicked unit").tag(sync=True)
    error = traitlets.Unicode("", help="the last refusal, one line ('' when none)").tag(sync=True)
    done = traitlets.Int(0, help="how many images and clicks have been answered").tag(sync=True)
    max_body = traitlets.Int(MAX_BODY, help="largest image accepted, in bytes").tag(sync=True)

    def __init__(self, runs: RunLike | Sequence[RunLike], *, names: Sequence[str] | None = None) -> None:
        listed = [runs] if isinstance(runs, Run | str | os.PathLike) else list(runs)
        if not 1 <= len(listed) <= 2:
            raise NnseeError(f"Explorer shows one or two runs side by side, got {len(listed)}: pass one run or two")
        if names is None:
            names = _names([r.path if isinstance(r, Run) else Path(r) for r in listed])
        elif isinstance(names, str) or len(names) != len(listed) or len(set(names)) != len(names):
            raise NnseeError(f"names= needs {len(listed)} different names, one per run, got {names!r}")
        self._loaded = [_load(r, str(n)) for r, n in zip(listed, names, strict=True)]
        shown = list(dict.fromkeys(v for r in self._loaded for v in r.views))
        super().__init__(runs=[r.summary() for r in self._loaded], views=shown)

    def _run(self, name: object) -> views.LoadedRun:
        for r in self._loaded:
            if r.name == name:
                return r
        raise NnseeError(f"no run called {name!r}; showing {', '.join(r.name for r in self._loaded)}")

    def _answer(self, fn: Any) -> None:
        """Run ``fn``; a refusal (or any failure) becomes one line in ``error``, never a traceback in the page."""
        try:
            fn()
            self.error = ""
        except (NnseeError, ImageRejected) as e:
            self.error = _one_line(e)
        except Exception as e:  # the page shows one line; the kernel keeps running
            self.error = f"internal error ({type(e).__name__}): {_one_line(e)}"
        finally:
            self.done += 1

    @traitlets.observe("image", "view")
    def _on_image(self, change: dict[str, Any]) -> None:
        self._answer(self._explain)

    def _explain(self) -> None:
        body = self.image
        if not body:
            self.results = []
            return
        if len(body) > self.max_body:
            raise ImageRejected(over_limit(self.max_body))
        self.results = [self._explain_one(r, body) for r in self._loaded]

    def _explain_one(self, loaded: views.LoadedRun, body: bytes) -> dict[str, Any]:
        """As the live page's ``POST /api/explain``: the chosen view where the run has it, else its default."""
        shape = loaded.shape
        image = decode_bytes(body, shape[-1], shape[0] == 1, resize_rule(loaded.run.meta))
        if is_blank(image):
            return {"run": loaded.name, "kind": loaded.kind, "blank": True, "class_names": loaded.run.class_names}
        return views.explain_image(loaded, image, self.view if self.view in loaded.views else None)

    @traitlets.observe("unit")
    def _on_unit(self, change: dict[str, Any]) -> None:
        if change["new"]:
            self._answer(lambda: self._card(change["new"]))

    def _card(self, asked: dict[str, Any]) -> None:
        loaded, j = self._run(asked.get("run")), asked.get("unit")
        if not loaded.caps.one_hidden_layer:
            raise NnseeError(f"run {loaded.name!r} is a {loaded.kind} model: unit cards need one hidden layer")
        n = views.n_units(loaded)
        if not isinstance(j, int) or isinstance(j, bool) or not 0 <= j < n:
            raise NnseeError(f"unit {j!r} does not exist in run {loaded.name!r}: pick one of 0..{n - 1}")
        self.card = views.unit_card(loaded, j)
