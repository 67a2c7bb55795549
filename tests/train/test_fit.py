"""Training: determinism, bitwise resume, interruption, divergence, warnings and degenerate settings."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from tiny import make_splits

from nnsee.data.imageset import ImageSet, Splits
from nnsee.errors import RunError, TrainingError
from nnsee.models import build_model
from nnsee.train import TrainConfig, fit, load_run, resume


def _model(splits: Splits, name: str = "mlp", seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    options = {"hidden": [6]} if name == "mlp" else {}
    return build_model(name, splits.shape, splits.train.n_classes, **options)


def _weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _assert_bitwise_equal(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_training_learns_the_tiny_problem_and_records_history(tiny_splits: Splits) -> None:
    result = fit(_model(tiny_splits), tiny_splits, TrainConfig(epochs=15, batch_size=8, lr=0.01), progress=False)
    assert result.status == "completed"
    assert result.history["epoch"] == list(range(1, 16))
    assert result.history["train_loss"][-1] < result.history["train_loss"][0]
    assert result.metrics["test"]["accuracy"] == 1.0


def test_same_seed_gives_bitwise_the_same_weights(tiny_splits: Splits) -> None:
    config = TrainConfig(epochs=3, batch_size=8)
    a = fit(_model(tiny_splits), tiny_splits, config, progress=False)
    b = fit(_model(tiny_splits), tiny_splits, config, progress=False)
    _assert_bitwise_equal(_weights(a.model), _weights(b.model))
    c = fit(_model(tiny_splits), tiny_splits, TrainConfig(epochs=3, batch_size=8, seed=1), progress=False)
    assert not torch.equal(a.model.out.weight, c.model.out.weight)


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "lbfgs"])
def test_resume_is_bitwise_equal_to_an_uninterrupted_run(tiny_splits: Splits, tmp_path, optimizer: str) -> None:
    config = TrainConfig(optimizer=optimizer, epochs=4, batch_size=8, l2=1e-3, lbfgs_iterations=3)
    whole = fit(_model(tiny_splits), tiny_splits, config, tmp_path / "whole", progress=False)
    short = TrainConfig(optimizer=optimizer, epochs=2, batch_size=8, l2=1e-3, lbfgs_iterations=3)
    fit(_model(tiny_splits), tiny_splits, short, tmp_path / "split", progress=False)
    resumed = resume(tmp_path / "split", epochs=2, data=tiny_splits, progress=False)
    assert resumed.epoch == 4
    _assert_bitwise_equal(_weights(whole.model), _weights(resumed.model))
    assert resumed.history["train_loss"] == whole.history["train_loss"]
    _assert_bitwise_equal(_weights(load_run(tmp_path / "split").model), _weights(whole.model))


class _InterruptAt(torch.nn.Module):
    """Wraps a model and raises KeyboardInterrupt on the n-th training forward (as Ctrl-C would)."""

    def __init__(self, inner: torch.nn.Module, at_call: int) -> None:
        super().__init__()
        self.inner, self.at_call, self.calls = inner, at_call, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            self.calls += 1
            if self.calls == self.at_call:
                raise KeyboardInterrupt
        return self.inner(x)


def test_ctrl_c_mid_epoch_leaves_a_complete_run_that_resumes_bitwise(tiny_splits: Splits, tmp_path) -> None:
    config = TrainConfig(epochs=4, batch_size=8)
    whole = fit(_model(tiny_splits), tiny_splits, config, progress=False)
    # 60 images / batch 8 = 8 steps per epoch; call 20 is in the middle of epoch 3.
    wrapped = _InterruptAt(_model(tiny_splits), at_call=20)
    result = fit(wrapped, tiny_splits, config, tmp_path / "run", progress=False)
    assert result.status == "interrupted" and result.epoch == 2
    run = load_run(tmp_path / "run", model=_InterruptAt(_model(tiny_splits), at_call=-1))
    assert run.epoch == 2 and run.meta["status"] == "training"
    resumed = resume(tmp_path / "run", data=tiny_splits, model=_InterruptAt(_model(tiny_splits), -1), progress=False)
    assert resumed.epoch == 4
    _assert_bitwise_equal(_weights(whole.model), {k[len("inner."):]: v for k, v in _weights(resumed.model).items()})


def test_divergence_stops_with_a_message_and_keeps_the_last_good_run(tmp_path) -> None:
    splits = make_splits(scale=255.0)
    config = TrainConfig(optimizer="sgd", lr=1e30, epochs=5, batch_size=8, standardize="none")
    with pytest.raises(TrainingError, match="learning rate") as caught:
        fit(_model(splits), splits, config, tmp_path / "run", progress=False)
    assert "not finite" in str(caught.value)
    assert "try 0.05." in str(caught.value)  # the default rate, not 1e+29 (lr / 10 of an absurd rate)
    run = load_run(tmp_path / "run")
    assert all(torch.isfinite(p).all() for p in run.model.parameters())
    assert run.epoch == 0  # the last good epoch: the initial weights
    with pytest.raises(TrainingError, match=r"try 0\.05 \(or a smaller --l2 than 5\)"):
        fit(_model(splits), splits, TrainConfig(optimizer="sgd", lr=1e30, l2=5.0, epochs=5, batch_size=8,
                                                standardize="none"), progress=False)


def test_unscaled_inputs_and_a_loss_stuck_at_chance_warn() -> None:
    rng = np.random.default_rng(0)
    noise = ImageSet(rng.uniform(0, 255, (200, 1, 8, 8)), rng.integers(0, 4, 200), list("abcd"))
    splits = Splits(noise, noise.subset(np.arange(20)), noise.subset(np.arange(20)))
    config = TrainConfig(optimizer="sgd", lr=1.0, momentum=0.0, epochs=4, batch_size=8, standardize="none")
    with pytest.warns(UserWarning) as caught:
        fit(_model(splits, "softmax"), splits, config, progress=False)
    messages = " ".join(str(w.message) for w in caught)
    assert "unscaled" in messages and "max pixel 25" in messages
    assert "no better than chance (ln 4 = 1.386)" in messages


def test_zero_epochs_saves_the_initial_model_and_scores_it(tiny_splits: Splits, tmp_path) -> None:
    model = _model(tiny_splits)
    before = _weights(model)
    result = fit(model, tiny_splits, TrainConfig(epochs=0), tmp_path / "run", progress=False)
    assert result.epoch == 0 and result.history["epoch"] == []
    _assert_bitwise_equal(before, _weights(load_run(tmp_path / "run").model))
    # The scores are the initial model's, recomputed here in float64 numpy from its weights.
    w = {k: v.double().numpy() for k, v in before.items()}
    x = result.standardizer.transform(tiny_splits.test.images).reshape(len(tiny_splits.test), -1).astype(np.float64)
    logits = np.tanh(x @ w["fc1.weight"].T + w["fc1.bias"]) @ w["out.weight"].T + w["out.bias"]
    y = tiny_splits.test.labels
    test = result.metrics["test"]
    assert test["accuracy"] == np.mean(logits.argmax(1) == y)
    shifted = logits - logits.max(1, keepdims=True)
    loss = np.mean(np.log(np.exp(shifted).sum(1)) - shifted[np.arange(len(y)), y])
    assert test["loss"] == pytest.approx(loss, rel=1e-5)


def test_batch_larger_than_the_data_trains_full_batch_with_a_warning(tiny_splits: Splits) -> None:
    with pytest.warns(UserWarning, match="larger than the 60 training images"):
        result = fit(_model(tiny_splits), tiny_splits, TrainConfig(epochs=2, batch_size=10_000), progress=False)
    assert len(result.history["epoch"]) == 2


def test_a_single_training_image_trains() -> None:
    splits = make_splits()
    one = splits.train.subset(np.array([0]))
    result = fit(_model(splits), Splits(one, splits.val, splits.test), TrainConfig(epochs=2), progress=False)
    assert math.isfinite(result.history["train_loss"][-1])


def test_one_class_is_refused_with_advice() -> None:
    splits = make_splits()
    images = ImageSet(splits.train.images[:5], np.zeros(5), ["only"])
    with pytest.raises(TrainingError, match="at least 2 classes"):
        fit(_model(splits), Splits(images, images, images), TrainConfig(epochs=1), progress=False)
    with pytest.raises(TrainingError, match="at least 2 classes"):
        build_model("softmax", (1, 4, 4), 1)


@pytest.mark.parametrize(
    ("options", "match"),
    [({"epochs": -1}, "epochs"), ({"batch_size": 0}, "batch size"), ({"lr": 0}, "learning rate"),
     ({"l2": -1}, "L2"), ({"optimizer": "rmsprop"}, "optimizer"), ({"standardize": "zca"}, "standardization")],
)
def test_degenerate_settings_are_refused(options: dict, match: str) -> None:
    with pytest.raises(TrainingError, match=match):
        TrainConfig(**options)


def test_hidden_sizes_zero_and_huge() -> None:
    with pytest.raises(TrainingError, match="softmax"):
        build_model("mlp", (1, 4, 4), 3, hidden=[0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        big = build_model("mlp", (1, 4, 4), 3, hidden=[10_000])
    assert big.fc1.weight.shape == (10_000, 16)


def test_l2_shrinks_the_weights(tiny_splits: Splits) -> None:
    norms = []
    for l2 in (0.0, 1e-2, 1e-1):
        result = fit(_model(tiny_splits, "softmax"), tiny_splits, TrainConfig(epochs=20, l2=l2, lr=0.05),
                     progress=False)
        norms.append(result.model.out.weight.norm().item())
    assert norms[0] > norms[1] > norms[2]


def test_any_torch_module_trains_and_its_run_needs_the_module_to_load(tiny_splits: Splits, tmp_path) -> None:
    from nnsee.errors import RunError

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    result = fit(model, tiny_splits, TrainConfig(epochs=20, batch_size=8, lr=0.01), tmp_path / "run", progress=False)
    assert result.metrics["test"]["accuracy"] > 0.9
    with pytest.raises(RunError, match="model"):
        load_run(tmp_path / "run")
    fresh = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    _assert_bitwise_equal(_weights(load_run(tmp_path / "run", model=fresh).model), _weights(result.model))


def test_early_stopping_keeps_the_best_weights(tiny_splits: Splits) -> None:
    # A validation set whose labels disagree with the training set: its loss must turn up as training goes on.
    val = tiny_splits.val
    shifted = Splits(tiny_splits.train, ImageSet(val.images, (val.labels + 1) % 3, val.class_names), val)
    result = fit(_model(shifted), shifted, TrainConfig(epochs=100, batch_size=8, lr=0.05, patience=2),
                 progress=False)
    assert result.status == "early-stopped"
    best = int(np.argmin(result.history["val_loss"]))
    assert result.epoch == best + 1 + 2
    assert result.metrics["val"]["loss"] == pytest.approx(result.history["val_loss"][best], rel=1e-5)


def test_resume_refuses_other_classes_or_shapes(tiny_splits: Splits, tmp_path) -> None:
    fit(_model(tiny_splits), tiny_splits, TrainConfig(epochs=1, batch_size=8), tmp_path / "run", progress=False)
    with pytest.raises(TrainingError, match="classes"):
        resume(tmp_path / "run", data=make_splits(n_classes=4), progress=False)
    with pytest.raises(TrainingError, match="shape"):
        resume(tmp_path / "run", data=make_splits(shape=(1, 5, 5)), progress=False)


def test_snapshots_are_kept_at_the_epochs_asked_for(tiny_splits: Splits, tmp_path) -> None:
    from nnsee.train.run import list_snapshots

    fit(_model(tiny_splits), tiny_splits, TrainConfig(epochs=3, batch_size=8, snapshots=[0, 2, 9]), tmp_path / "run",
        progress=False)
    assert sorted(list_snapshots(tmp_path / "run")) == [0, 2]


# ---------------------------------------------------------------------------------------------- save policy


def test_save_at_the_end_writes_the_run_once_without_resume_state(
    tiny_splits: Splits, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib

    fit_module = importlib.import_module("nnsee.train.fit")  # the package attribute `fit` is the function

    saves: list[bool] = []
    real_save_run = fit_module.save_run

    def counting_save_run(path, model, meta, state=None):  # noqa: ANN001, ANN202
        saves.append(state is not None)
        return real_save_run(path, model, meta, state)

    monkeypatch.setattr(fit_module, "save_run", counting_save_run)
    config = TrainConfig(epochs=3, batch_size=8, snapshots=[0, 2])
    every = fit(_model(tiny_splits), tiny_splits, config, tmp_path / "every", progress=False)
    assert saves == [True] * 5  # before training, after each epoch, at the end
    saves.clear()
    end = fit(_model(tiny_splits), tiny_splits, config, tmp_path / "end", save="end", progress=False)
    assert saves == [False]
    assert sorted(p.name for p in (tmp_path / "end").iterdir()) == ["model.safetensors", "run.json", "snapshots"]
    run = load_run(tmp_path / "end")
    assert run.snapshot_epochs == [0, 2] and run.meta["status"] == "completed"
    timeless = {k: v for k, v in load_run(tmp_path / "every").history.items() if k != "seconds"}
    assert {k: v for k, v in run.history.items() if k != "seconds"} == timeless and end.metrics == every.metrics
    _assert_bitwise_equal(_weights(run.model), _weights(every.model))
    with pytest.raises(RunError, match="no resume state"):
        run.state()


def test_save_at_the_end_interrupted_writes_no_run(tiny_splits: Splits, tmp_path, capsys) -> None:
    wrapped = _InterruptAt(_model(tiny_splits), at_call=20)
    result = fit(wrapped, tiny_splits, TrainConfig(epochs=4, batch_size=8), tmp_path / "run", save="end",
                 progress=False)
    assert result.status == "interrupted" and not (tmp_path / "run" / "run.json").exists()
    assert "was not written" in capsys.readouterr().err


def test_unknown_save_policy_is_refused(tiny_splits: Splits, tmp_path) -> None:
    with pytest.raises(TrainingError, match=r"save policy must be one of every-epoch, end; got 'never'"):
        fit(_model(tiny_splits), tiny_splits, TrainConfig(epochs=1), tmp_path / "run", save="never")
    assert not (tmp_path / "run").exists()
