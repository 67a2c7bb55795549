"""Running the live page: which ``Host`` headers to accept for a bind address, and the uvicorn server itself."""

from __future__ import annotations

from typing import Any

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def allowed_hosts(host: str, port: int) -> list[str] | None:
    """``Host`` values a server bound to ``host:port`` accepts; None for loopback (the guard's own loopback list)."""
    if host in LOOPBACK:
        return None
    return [f"{name}:{port}" for name in ("127.0.0.1", "localhost", "[::1]", host)]


def run_server(app: Any, host: str, port: int, limit_concurrency: int) -> None:
    """Serve ``app`` (from :func:`nnsee.serve.create_app`) on ``host:port`` until Ctrl-C."""
    import uvicorn

    uvicorn.run(app, host=host, port=port, limit_concurrency=limit_concurrency, log_level="warning")
