"""The built wheel, installed non-editable in a fresh venv and run outside the source tree, has everything it needs.

The editable install reads package data from the source tree and hides any file the wheel leaves out. Here the
wheel alone is installed (``--no-deps``); torch and the other dependencies come from this interpreter's
site-packages through a ``.pth`` path line (the ``.pth`` files in that folder, the editable hook among them, are not
processed), and every command runs from an empty folder, so ``import nnsee`` can only find the wheel's copy.
"""

from __future__ import annotations

import json
import os
import site
import socket
import subprocess
import sys
import time
import urllib.request
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SOURCE = REPO / "nnsee"
STATIC = ("index.html", "app.js", "style.css")


def _run(args: list[str | Path], cwd: Path, timeout: float = 300) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP")}
    done = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{args} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def _package_files() -> set[str]:
    """Every file of the source package (bytecode caches aside), as wheel paths."""
    return {p.relative_to(REPO).as_posix() for p in SOURCE.rglob("*")
            if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"}


def _get(port: int, path: str) -> bytes:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=30) as r:
        assert r.status == 200
        return r.read()


def _serve(nnsee: Path, run: Path, cwd: Path) -> dict[str, bytes]:
    """The page (at ``/``) and its static files as the installed `nnsee serve` sends them."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([str(nnsee), "serve", str(run), "--port", str(port)], cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, proc.stdout.read().decode(errors="replace")
            try:
                runs = json.loads(_get(port, "/api/runs"))["runs"]
                break
            except OSError:
                assert time.monotonic() < deadline, "the installed server did not answer within 60 s"
                time.sleep(0.2)
        assert [r["name"] for r in runs] == [run.name]
        return {"/": _get(port, "/"), **{name: _get(port, f"/static/{name}") for name in STATIC}}
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def test_the_installed_wheel_runs_on_its_own(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", tmp_path / "dist", REPO], elsewhere)
    (wheel,) = (tmp_path / "dist").glob("nnsee-*.whl")
    with zipfile.ZipFile(wheel) as z:
        missing = _package_files() - set(z.namelist())
    assert not missing, f"the wheel leaves out {sorted(missing)}"

    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv], elsewhere)
    python, nnsee = venv / "bin" / "python", venv / "bin" / "nnsee"
    # Installed before the .pth exists, so pip sees an empty venv (not the editable nnsee of this interpreter).
    _run([sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index", "-q", wheel],
         elsewhere)
    purelib = Path(_run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], elsewhere).strip())
    (purelib / "dependencies.pth").write_text("".join(f"{p}\n" for p in site.getsitepackages()))

    where = _run([python, "-c", "import importlib.metadata as m, nnsee; print(nnsee.__file__); "
                  "print(m.distribution('nnsee').locate_file('nnsee/__init__.py'))"], elsewhere).split()
    assert where == [str(purelib / "nnsee" / "__init__.py")] * 2

    assert all(word in _run([nnsee, "--help"], elsewhere) for word in ("train", "explain", "report", "serve"))
    info = json.loads(_run([nnsee, "data", "info", "digits", "--json"], elsewhere))
    assert (info["n"], info["shape"], len(info["classes"])) == (5000, [1, 28, 28], 10)

    run = tmp_path / "digits-softmax"
    _run([nnsee, "train", "--data", "digits", "--epochs", "1", "--out", run], elsewhere)
    _run([nnsee, "report", run, "--out", tmp_path / "report"], elsewhere)
    template = (SOURCE / "report" / "templates" / "report.html.j2").read_text(encoding="utf-8")
    written = (tmp_path / "report" / "index.html").read_text(encoding="utf-8")
    assert written.startswith(template[: template.index("{{")])  # the template's head, as the source has it

    static = {name: (SOURCE / "serve" / "static" / name).read_bytes() for name in STATIC}
    assert _serve(nnsee, run, elsewhere) == {"/": static["index.html"], **static}
