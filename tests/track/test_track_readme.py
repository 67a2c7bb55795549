"""README's "Your own training loop", run as written: the plain loop extracted verbatim and run as the user's script,
then `nnsee report` on its run; the Lightning recipe verbatim against a tiny fake Lightning (nnsee does not depend on
Lightning)."""

from __future__ import annotations

import re
import subprocess
import sys
import types
from pathlib import Path

import pytest
import torch
from torch import nn

from nnsee.train import load_run
from tests.track.track_model import CLASSES, SHAPE, tiny_cnn

README = Path(__file__).resolve().parents[2] / "README.md"


def _blocks() -> list[str]:
    text = README.read_text(encoding="utf-8")
    section = text.split("\n## Your own training loop\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


def test_the_plain_loop_runs_and_nnsee_report_shows_its_evolution(tmp_path) -> None:
    script = tmp_path / "train_mine.py"
    script.write_text(_blocks()[0], encoding="utf-8")
    done = subprocess.run([sys.executable, script.name], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    run = load_run(tmp_path / "runs" / "my-loop")  # rebuilt by importing train_mine.py: the loop does not run again
    assert run.history["epoch"] == [1, 2, 3, 4, 5] and run.meta["status"] == "tracked"
    assert run.snapshot_epochs == [0, 1, 2, 3, 5]
    assert run.history["val_accuracy"][-1] > 0.8 and run.history["train_loss"][-1] < run.history["train_loss"][0]
    nnsee_cli = Path(sys.executable).with_name("nnsee")  # the console script the package installs
    report = subprocess.run([str(nnsee_cli), "report", "runs/my-loop"], cwd=tmp_path, capture_output=True, text=True,
                            timeout=900)
    assert report.returncode == 0, report.stderr[-2000:]
    html = (tmp_path / "runs" / "my-loop" / "report" / "index.html").read_text(encoding="utf-8")
    for heading in ("Learning curves", "Evolution during training", "first 8 filters of the first convolution, 0",
                    "Feature evolution during training"):
        assert heading in html, heading
    assert html.count('alt="weights at epoch') == 5


class _Callback:  # lightning.pytorch.Callback: hooks that do nothing
    pass


class _Module(nn.Module):  # a LightningModule: the network in self.model
    def __init__(self) -> None:
        super().__init__()
        self.model = tiny_cnn()


class _Trainer:
    """Lightning's order, for what the recipe uses: on_fit_start; per epoch the training steps, the validation,
    the logged values in callback_metrics (tensors), on_train_epoch_end with current_epoch 0-based; on_fit_end."""

    is_global_zero = True

    def __init__(self, max_epochs: int, callbacks: list) -> None:
        self.max_epochs, self.callbacks, self.current_epoch, self.callback_metrics = max_epochs, callbacks, 0, {}
        self.logged: list[dict[str, float]] = []

    def fit(self, module: _Module) -> None:
        optimizer = torch.optim.SGD(module.model.parameters(), lr=0.1)
        for c in self.callbacks:
            c.on_fit_start(self, module)
        for epoch in range(self.max_epochs):
            g = torch.Generator().manual_seed(epoch)
            x, y = torch.randn(16, *SHAPE, generator=g), torch.randint(0, 10, (16,), generator=g)
            module.model.train()
            loss = nn.functional.cross_entropy(module.model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            module.model.eval()
            with torch.no_grad():
                val_loss = nn.functional.cross_entropy(module.model(x), y)
            self.callback_metrics = {"train_loss": loss.detach(), "val_loss": val_loss, "val_acc": torch.tensor(0.5)}
            self.logged.append({k: float(v) for k, v in self.callback_metrics.items()})
            self.current_epoch = epoch
            for c in self.callbacks:
                c.on_train_epoch_end(self, module)
        for c in self.callbacks:
            c.on_fit_end(self, module)


def test_the_lightning_recipe_with_a_fake_lightning(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    lightning = types.ModuleType("lightning")
    lightning.pytorch = types.ModuleType("lightning.pytorch")
    lightning.pytorch.Callback = _Callback
    monkeypatch.setitem(sys.modules, "lightning", lightning)
    monkeypatch.setitem(sys.modules, "lightning.pytorch", lightning.pytorch)
    namespace: dict = {}
    exec(compile(_blocks()[1], "README.md (Lightning recipe)", "exec"), namespace)
    callback = namespace["NnseeTrack"](out=tmp_path / "lit", class_names=CLASSES, input_shape=SHAPE,
                                       normalize="none", snapshots=[0, 2])
    trainer = _Trainer(max_epochs=3, callbacks=[callback])
    module = _Module()
    trainer.fit(module)
    run = load_run(tmp_path / "lit", model=tiny_cnn(5))
    assert run.history["epoch"] == [1, 2, 3] and run.snapshot_epochs == [0, 2]
    for key in ("train_loss", "val_loss"):
        assert run.history[key] == pytest.approx([row[key] for row in trainer.logged])
    assert run.history["val_accuracy"] == [0.5] * 3 and "train_accuracy" not in run.history  # never logged
    assert all(torch.equal(v, module.model.state_dict()[k]) for k, v in run.model.state_dict().items())
    assert run.meta["status"] == "tracked" and not (tmp_path / "lit" / "history.jsonl").exists()
