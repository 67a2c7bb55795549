"""``create_app(run_paths)``: the live page and its JSON API over the runs named on the command line.

Routes: ``GET /`` (the page), ``/static/*`` (its files only), ``GET /api/runs``, ``POST /api/explain?run=NAME``
(an image body, ``Content-Type: image/png``; ``&view=`` one of the run's ``views``: ``contributions`` or a registered
method), ``GET /api/runs/{name}/templates``, ``GET /api/runs/{name}/units/{j}``.
Runs are loaded once at start; no other path on disk is ever read. Limits and refusals: :mod:`nnsee.serve.guard`.
Decoding and the model's work run in a :class:`~nnsee.serve.pool.WorkPool` (a few threads, a bounded queue; 503 with
``Retry-After`` when it is full), never on the event loop.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TypeVar

import numpy as np
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.requests import ClientDisconnect

from nnsee.errors import NnseeError, not_one_of
from nnsee.methods import MethodError
from nnsee.models.adopted import resize_rule
from nnsee.serve import confusion, layers, representation, views
from nnsee.serve.decode import ImageRejected, decode_bytes, is_blank
from nnsee.serve.guard import RETRY_AFTER_S, Guard, SecurityHeaders, over_limit
from nnsee.serve.pool import Busy, WorkPool
from nnsee.train.config import resolve_device

T = TypeVar("T")
STATIC = Path(__file__).parent / "static"
MAX_BODY = 2 * 1024 * 1024
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; connect-src 'self'; "
       "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
SECURITY_HEADERS = {"content-security-policy": CSP, "x-content-type-options": "nosniff",
                    "referrer-policy": "no-referrer", "x-frame-options": "DENY",
                    "cross-origin-resource-policy": "same-origin", "cache-control": "no-store"}


class _App(FastAPI):
    """FastAPI with :class:`SecurityHeaders` outside everything, Starlette's 500 handler included."""

    def build_middleware_stack(self):  # type: ignore[no-untyped-def]
        return SecurityHeaders(super().build_middleware_stack(), SECURITY_HEADERS)


def _names(paths: Sequence[Path]) -> list[str]:
    names: list[str] = []
    for p in paths:
        base = p.resolve().name or "run"
        name, i = base, 2
        while name in names:
            name, i = f"{base}-{i}", i + 1
        names.append(name)
    return names


async def read_limited(request: Request, limit: int) -> bytes:
    """The request body, or 413 (closing the connection) as soon as more than ``limit`` bytes have arrived
    (chunked or lying bodies); 408 if the client went away or the server cut off its trickling body."""
    body = bytearray()
    try:
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                raise HTTPException(413, over_limit(limit), headers={"connection": "close"})
    except ClientDisconnect:
        raise HTTPException(408, "the body did not arrive in time", headers={"connection": "close"}) from None
    return bytes(body)


async def in_pool(pool: WorkPool, fn: Callable[[], T]) -> T:
    """``fn()`` in the work pool; a full pool is 503 with ``Retry-After``, a method's refusal 422."""
    try:
        return await pool.run(fn)
    except Busy as e:
        raise HTTPException(503, str(e), headers={"retry-after": str(RETRY_AFTER_S)}) from None
    except MethodError as e:
        raise HTTPException(422, str(e)) from None


def posted_image(body: bytes, loaded: views.LoadedRun) -> np.ndarray | None:
    """A posted image decoded as the run's data ((C, H, W) in [0, 1]), None when blank; 400 when it cannot be."""
    shape = loaded.shape
    try:
        image = decode_bytes(body, shape[-1], shape[0] == 1, resize_rule(loaded.run.meta))
    except ImageRejected as e:
        raise HTTPException(400, str(e)) from None
    return None if is_blank(image) else image


def create_app(run_paths: Iterable[str | os.PathLike[str]], *, max_body: int = MAX_BODY,
               allowed_hosts: Iterable[str] | None = None, pool: WorkPool | None = None,
               device: str = "cpu", watch: str | os.PathLike[str] | None = None) -> FastAPI:
    """The app over ``run_paths``, each run loaded once on ``device`` (``auto``, ``cpu``, ``cuda[:N]``, ``mps``;
    checked before any run is read), where every request computes; ``watch``: a run folder followed while it trains
    (:mod:`nnsee.serve.watch`, the page ``/watch``; ``/`` leads there when no other run is served)."""
    paths = [Path(p) for p in run_paths]
    if not paths and watch is None:
        raise NnseeError("name at least one run folder to serve, or one to follow with --watch RUN")
    device = resolve_device(device)
    runs = {name: views.load(p, name, device) for name, p in zip(_names(paths), paths, strict=True)}
    jobs = pool or WorkPool()

    app = _App(title="nnsee", docs_url=None, redoc_url=None, openapi_url=None)

    def get(name: str) -> views.LoadedRun:
        if name not in runs:
            raise HTTPException(404, f"no run called {name!r}; serving {', '.join(runs)}")
        return runs[name]

    @app.get("/", include_in_schema=False)
    def index() -> Response:
        if not runs:
            return RedirectResponse("/watch")
        return FileResponse(STATIC / "index.html", media_type="text/html")

    @app.get("/api/runs")
    def list_runs() -> dict:
        return {"runs": [r.summary() for r in runs.values()], "max_body": max_body}

    @app.post("/api/explain")
    async def explain(request: Request, run: str, view: str | None = None) -> JSONResponse:
        loaded = get(run)
        if view is not None and view not in loaded.views:
            raise HTTPException(422, not_one_of(f"view for run {run!r}", view, loaded.views))
        body = await read_limited(request, max_body)

        def work() -> dict:
            image = posted_image(body, loaded)
            if image is None:
                return {"run": loaded.name, "kind": loaded.kind, "blank": True, "class_names": loaded.run.class_names}
            return views.explain_image(loaded, image, view)

        return JSONResponse(await in_pool(jobs, work))

    @app.get("/api/runs/{name}/templates")
    async def templates(name: str) -> dict:
        loaded = get(name)
        if not loaded.caps.templates:
            raise HTTPException(404, f"run {name!r} is a {loaded.kind} model: class templates need a linear first "
                                "layer")
        return await in_pool(jobs, lambda: views.templates(loaded))

    @app.get("/api/runs/{name}/units/{j}")
    async def unit(name: str, j: int) -> dict:
        loaded = get(name)
        if not loaded.caps.one_hidden_layer:
            raise HTTPException(404, f"run {name!r} is a {loaded.kind} model: unit cards need one hidden layer")
        n = views.n_units(loaded)
        if not 0 <= j < n:
            raise HTTPException(404, f"unit {j} does not exist (0..{n - 1})")
        return await in_pool(jobs, lambda: views.unit_card(loaded, j))

    # Each further view registers its routes from its own module: add_routes(app, get, jobs).
    if watch is not None:
        from nnsee.serve.watch import add_routes as add_watch_routes

        add_watch_routes(app, jobs, watch)
    confusion.add_routes(app, get, jobs)
    representation.add_routes(app, get, jobs)
    layers.add_routes(app, get, jobs)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.add_middleware(Guard, max_body=max_body, allowed_hosts=allowed_hosts)  # outermost: refuses first
    return app
