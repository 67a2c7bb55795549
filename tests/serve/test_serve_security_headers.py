"""The security headers on every kind of response of the real server: the page, its files, the API, and every
refusal and error (400, 403, 404, 405, 413, 415, 422; a 500 in process), the CSP read directive by directive."""

from __future__ import annotations

import email.message
import re

import pytest
from serve.serve_util import band, post_chunked_over_limit

from nnsee.serve.app import STATIC, create_app

EXPECTED = {"x-content-type-options": "nosniff", "referrer-policy": "no-referrer", "x-frame-options": "DENY",
            "cross-origin-resource-policy": "same-origin", "cache-control": "no-store"}
UNSAFE = {"'unsafe-inline'", "'unsafe-eval'", "'unsafe-hashes'", "*", "data:", "blob:", "http:", "https:"}


def csp_directives(value: str) -> dict[str, set[str]]:
    directives: dict[str, set[str]] = {}
    for part in filter(None, (p.strip() for p in value.split(";"))):
        name, *sources = part.split()
        assert name.lower() not in directives, f"directive {name} given twice"
        directives[name.lower()] = set(sources)
    return directives


def assert_secure(headers) -> None:  # type: ignore[no-untyped-def]
    """The headers of one response: each security header once, and a CSP that allows only this server's files."""
    for name, value in EXPECTED.items():
        assert headers.get_all(name) == [value], (name, headers.get_all(name))
    assert len(headers.get_all("content-security-policy") or []) == 1, headers
    csp = csp_directives(headers["content-security-policy"])
    default = csp["default-src"]
    assert default in ({"'none'"}, {"'self'"}), csp

    def effective(name: str) -> set[str]:
        return csp.get(name, default)

    for name in ("script-src", "style-src"):  # no inline code: the page's JS and CSS are files
        assert effective(name) <= {"'self'"} and not effective(name) & UNSAFE, (name, csp)
    assert effective("connect-src") <= {"'self'"}, csp
    assert effective("img-src") <= {"'self'", "data:", "blob:"}, csp  # the maps are data: PNGs
    assert effective("object-src") == {"'none'"}, csp
    for name in ("frame-ancestors", "base-uri", "form-action"):  # these never fall back to default-src
        assert csp.get(name) == {"'none'"}, (name, csp)


def _message(pairs) -> email.message.Message:  # type: ignore[no-untyped-def]
    h = email.message.Message()
    for name, value in pairs:
        h[name.strip()] = value.strip()
    return h


def _exchange(server, method, path, body=None, headers=None, skip_host=False):  # type: ignore[no-untyped-def]
    status, h, _ = server.exchange(method, path, body, headers, skip_host)
    return status, h


def test_page_files_and_api_carry_the_headers(server) -> None:
    png = {"Content-Type": "image/png"}
    for method, path, body, headers in [("GET", "/", None, None), ("GET", "/static/app.js", None, None),
                                        ("GET", "/static/style.css", None, None), ("GET", "/api/runs", None, None),
                                        ("GET", "/api/runs/mlp/units/0", None, None),
                                        ("POST", "/api/explain?run=cnn", band(0), png)]:
        status, h = _exchange(server, method, path, body, headers)
        assert status == 200, (method, path)
        assert_secure(h)


@pytest.mark.parametrize("status, method, path, body, headers, skip_host", [
    (400, "GET", "/api/runs", None, {"Host": "evil.example"}, True),  # the guard
    (400, "POST", "/api/explain?run=softmax", b"not an image", {"Content-Type": "image/png"}, False),  # the route
    (403, "POST", "/api/explain?run=softmax", band(0), {"Content-Type": "image/png", "Origin": "http://evil.example"},
     False),
    (404, "GET", "/nope", None, None, False),
    (404, "GET", "/static/nope.js", None, None, False),
    (404, "GET", "/api/runs/nope/templates", None, None, False),
    (405, "GET", "/api/explain?run=softmax", None, None, False),
    (413, "POST", "/api/explain?run=softmax", None, {"Content-Type": "image/png", "Content-Length": "3000000"}, False),
    (415, "POST", "/api/explain?run=softmax", band(0), {"Content-Type": "text/plain"}, False),
    (422, "POST", "/api/explain", band(0), {"Content-Type": "image/png"}, False),
], ids=["host", "image", "origin", "path", "static", "run", "method", "length-413", "type", "no-run"])
def test_refusals_and_errors_carry_the_headers(server, status, method, path, body, headers, skip_host) -> None:
    got, h = _exchange(server, method, path, body, headers, skip_host)
    assert got == status
    assert_secure(h)


def test_a_chunked_body_over_the_limit_413_carries_the_headers(server) -> None:
    """Refused by the route as the body streams, not by the guard."""
    head = post_chunked_over_limit(server).decode("latin-1").split("\r\n")
    assert head[0].startswith("HTTP/1.1 413"), head
    assert_secure(_message(line.split(":", 1) for line in head[1:]))


def test_a_server_error_carries_the_headers(serve_runs) -> None:
    """A 500 comes from Starlette's outermost error middleware: the headers must be added outside it."""
    testclient = pytest.importorskip("starlette.testclient")  # needs httpx
    app = create_app([serve_runs["softmax"]], allowed_hosts=["testserver"])

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("planted")

    with testclient.TestClient(app, raise_server_exceptions=False) as client:
        r = client.get("/boom")
    assert r.status_code == 500
    assert_secure(_message(r.headers.multi_items()))


def test_the_page_needs_nothing_the_csp_blocks() -> None:
    """No inline script, style or event handler in the page: under script-src/style-src 'self' they would not run."""
    html = (STATIC / "index.html").read_text()
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html, re.I)
    assert not re.search(r"<style\b|\sstyle=|\son[a-z]+=", html, re.I)
    assert not re.search(r"\b(eval|new Function)\s*\(", (STATIC / "app.js").read_text())
