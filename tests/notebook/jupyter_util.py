"""Helpers of the widget tests: tiny runs trained on the spot, PNG bytes, and a JupyterLab server on loopback."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import torch
from serve.serve_util import free_port, png, stop
from tiny import HOSTILE_NAMES, banded_npz

from nnsee.data import load_data
from nnsee.models import build_model
from nnsee.train import TrainConfig, fit

SIDE = 8  # 8x8 images; class k lights rows 2k..2k+1


def train_runs(root: Path) -> dict[str, Path]:
    """A softmax regression and an MLP (12 hidden units) on 8x8 bands whose class names are hostile HTML, trained
    once under ``root`` (a later call with the same ``root`` reads them)."""
    out = {name: root / name for name in ("softmax", "mlp")}
    if all((p / "run.json").exists() for p in out.values()):
        return out
    banded_npz(root / "bands.npz", 50, SIDE, class_names=HOSTILE_NAMES)
    splits = load_data(str(root / "bands.npz"), seed=0)
    for name, options in {"softmax": {}, "mlp": {"hidden": [12]}}.items():
        torch.manual_seed(0)
        model = build_model(name, splits.shape, splits.train.n_classes, **options)
        fit(model, splits, TrainConfig(epochs=6, batch_size=16, lr=0.01), root / name, progress=False)
    return out


def band_png(k: int, side: int = 32) -> bytes:
    """A ``side``x``side`` PNG, white on black, lighting class ``k``'s rows (as a stroke on the canvas would)."""
    a = np.zeros((side, side), np.uint8)
    rows = side // SIDE
    a[2 * k * rows : (2 * k + 2) * rows] = 255
    return png(a)


class Lab:
    """A JupyterLab server started from this venv on 127.0.0.1, everything it writes under one folder."""

    def __init__(self, root: Path) -> None:
        self.root, self.port, self.token = root, free_port(), secrets.token_hex(16)
        home = root / ".jupyter-home"
        env = {**os.environ, "JUPYTER_CONFIG_DIR": str(home / "config"), "JUPYTER_DATA_DIR": str(home / "data"),
               "JUPYTER_RUNTIME_DIR": str(home / "runtime"), "IPYTHONDIR": str(home / "ipython"),
               "JUPYTERLAB_SETTINGS_DIR": str(home / "settings"), "JUPYTERLAB_WORKSPACES_DIR": str(home / "ws"),
               "JUPYTER_PLATFORM_DIRS": "1"}
        env.pop("JUPYTER_PATH", None)
        # No news, no update checks: the notification extension's own switches, as user settings.
        notify = home / "settings" / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
        notify.parent.mkdir(parents=True, exist_ok=True)
        notify.write_text('{"fetchNews": "false", "checkForUpdates": false}')
        cmd = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip", "127.0.0.1", "--port", str(self.port),
               "--port-retries=0", "--allow-root", f"--IdentityProvider.token={self.token}",
               f"--ServerApp.root_dir={root}",
               "--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
               "--LabApp.extension_manager=readonly",
               "--KernelSpecManager.ensure_native_kernel=True", "--MappingKernelManager.default_kernel_name=python3"]
        self.log = open(root / "jupyter.log", "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(cmd, env=env, stdout=self.log, stderr=subprocess.STDOUT, cwd=root)
        self.base = f"http://127.0.0.1:{self.port}"

    def wait(self, limit_s: float = 60) -> float:
        """Seconds until the server answers its API (or RuntimeError with the log's tail)."""
        start = time.monotonic()
        while time.monotonic() - start < limit_s:
            if self.proc.poll() is not None:
                break
            try:
                with urllib.request.urlopen(f"{self.base}/api/status?token={self.token}", timeout=2) as r:
                    if r.status == 200:
                        return time.monotonic() - start
            except OSError:
                time.sleep(0.3)
        raise RuntimeError(f"JupyterLab did not answer (exit code {self.proc.poll()}) within {limit_s:g} s:\n"
                           f"{self.tail()}")

    def start_kernel(self, notebook: str) -> str:
        """Start the notebook's session and kernel (python3) through the server's API, so the page finds them and
        does not ask which kernel to start; the kernel's id."""
        body = json.dumps({"path": notebook, "type": "notebook", "name": notebook, "kernel": {"name": "python3"}})
        request = urllib.request.Request(f"{self.base}/api/sessions", data=body.encode(), method="POST",
                                         headers={"Authorization": f"token {self.token}",
                                                  "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as r:
            return json.loads(r.read())["kernel"]["id"]

    def tail(self, n: int = 3000) -> str:
        return (self.root / "jupyter.log").read_bytes()[-n:].decode(errors="replace")

    def stop(self) -> None:
        stop(self)  # type: ignore[arg-type]  # it needs only .proc
        self.log.close()


def shared_runs(tmp_path_factory: object) -> dict[str, Path]:
    """:func:`train_runs` in one folder of the session's temporary directory, so every widget test module reads the
    same two runs."""
    root = tmp_path_factory.getbasetemp() / "widget-runs"  # type: ignore[attr-defined]
    root.mkdir(exist_ok=True)
    return train_runs(root)
