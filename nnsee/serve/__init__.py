"""The live local web page: draw or upload an image and watch the model's units and maps (FastAPI, loopback).

``create_app(run_paths)`` builds the app; ``nnsee serve RUN...`` runs it with uvicorn on 127.0.0.1.
"""

from nnsee.serve.app import create_app

__all__ = ["create_app"]
