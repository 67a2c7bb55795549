"""The live local web page: draw or upload an image and watch the model's units and maps (FastAPI, loopback).

``create_app(run_paths)`` builds the app; ``nnsee serve RUN...`` runs it with uvicorn on 127.0.0.1. The app (and
FastAPI with it) is imported when ``create_app`` is first used, so the pure views in :mod:`nnsee.serve.views`
(which the notebook widget shares) import without the web stack.
"""

from typing import Any

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from nnsee.serve.app import create_app

        return create_app
    raise AttributeError(f"module 'nnsee.serve' has no attribute {name!r}")
