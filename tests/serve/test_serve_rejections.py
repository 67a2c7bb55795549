"""Every refusal the server owes, against the real server with raw requests (nothing normalized): a foreign Host 400,
a body over 2 MiB 413, a wrong content type 415, empty / garbage / truncated / GIF bodies and a PNG bomb 400, path
traversal (``/static/../app.py``, ``%2e%2e``, ``..%2f``, ``../../../../etc/passwd``) 404, a foreign Origin on a
state-changing route 403."""

from __future__ import annotations

import io
import socket
import time

import numpy as np
import pytest
from PIL import Image
from serve.serve_util import band, png, post_chunked_over_limit


def _post(server, body, ctype="image/png", **headers):
    return server.raw("POST", "/api/explain?run=softmax", body, {"Content-Type": ctype, **headers})[0]


@pytest.mark.parametrize("host", ["evil.example", "evil.example:80", "127.0.0.1", "localhost:1", "127.0.0.1.nip.io"])
def test_serve_foreign_host_400(server, host):
    assert server.raw("GET", "/api/runs", headers={"Host": host}, skip_host=True)[0] == 400


def test_serve_loopback_hosts_accepted(server):
    for name in ("127.0.0.1", "localhost", "[::1]"):
        assert server.raw("GET", "/api/runs", headers={"Host": f"{name}:{server.port}"}, skip_host=True)[0] == 200


def test_serve_foreign_origin_403(server):
    assert _post(server, band(0), Origin="http://evil.example") == 403
    assert _post(server, band(0), Origin="null") == 403
    assert _post(server, band(0), Origin=f"http://127.0.0.1:{server.port}") == 200


def test_serve_body_over_limit_413_fast(server):
    """A declared 3 MiB body is refused from the header alone: the reply comes before the body is sent."""
    t = time.perf_counter()
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        s.sendall(f"POST /api/explain?run=softmax HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
                  f"Content-Type: image/png\r\nContent-Length: {3 * 1024 * 1024}\r\n\r\n".encode() + b"\0" * 1024)
        reply = s.recv(200)
    assert reply.startswith(b"HTTP/1.1 413"), reply
    assert time.perf_counter() - t < 2


def test_serve_lying_or_chunked_body_413(server):
    """A small Content-Length with more bytes is cut at the length; chunked bodies are counted as they stream."""
    reply = post_chunked_over_limit(server)
    assert reply.startswith(b"HTTP/1.1 413"), reply


@pytest.mark.parametrize("ctype", ["text/plain", "application/json", "multipart/form-data; boundary=x", ""])
def test_serve_wrong_content_type_415(server, ctype):
    assert _post(server, band(0), ctype) == 415


def _pcx() -> bytes:
    buf = io.BytesIO()
    Image.new("L", (16, 16), 255).save(buf, "PCX")
    return buf.getvalue()


EPS = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 16 16\n0 0 moveto 16 16 lineto stroke\nshowpage\n"


@pytest.mark.parametrize("body", [b"", b"garbage, not an image" * 10, band(0)[:60], _pcx(), EPS],
                         ids=["empty", "garbage", "truncated", "pcx", "eps"])
def test_serve_bad_images_400(server, body):
    assert _post(server, body) == 400


def test_serve_png_bomb_400_fast(server):
    buf = io.BytesIO()
    Image.new("1", (10000, 10000)).save(buf, "PNG")
    assert len(buf.getvalue()) < 50_000
    t = time.perf_counter()
    assert _post(server, buf.getvalue()) == 400
    assert time.perf_counter() - t < 0.5
    big = io.BytesIO()
    Image.new("1", (5000, 5000)).save(big, "PNG")  # 25 MP: under Pillow's bomb limit, over the server's cap
    assert _post(server, big.getvalue()) == 400


def test_serve_rgb_and_jpeg_accepted(server):
    a = np.zeros((64, 64, 3), np.uint8)
    a[16:40] = 255
    assert _post(server, png(a, "RGB")) == 200
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, "JPEG")
    assert _post(server, buf.getvalue(), "image/jpeg") == 200


@pytest.mark.parametrize("path", [
    "/static/../app.py", "/static/%2e%2e/app.py", "/static/..%2fapp.py", "/static/%2e%2e%2fapp.py",
    "/static/../../../../etc/passwd", "/static/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd", "/static/..%5capp.py",
    "/../nnsee/serve/app.py", "/static//etc/passwd", "/static/%2fetc%2fpasswd", "/static/.%2e/guard.py",
])
def test_serve_traversal_404(server, path):
    status, body = server.raw("GET", path)
    assert status == 404, (path, body[:200])
    assert b"import" not in body and b"root:" not in body


def test_serve_only_named_runs(server):
    assert server.raw("GET", "/api/runs/..%2f..%2fetc/templates")[0] == 404
    assert server.raw("POST", "/api/explain?run=../softmax", band(0), {"Content-Type": "image/png"})[0] == 404
