"""The per-channel ``normalize`` standardization of adopted runs: the torchvision formula, its round trips, and
run.json records that cannot be used refused on load, naming the field."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from torch import nn

from nnsee.data.standardize import Standardizer, parse_normalize
from nnsee.errors import DataError, RunError


def test_imagenet_is_torchvisions_formula_and_round_trips() -> None:
    x = np.random.default_rng(0).random((2, 3, 5, 5), dtype=np.float32)
    s = parse_normalize("imagenet", 3)
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    expected = (x - mean[:, None, None]) / std[:, None, None]  # torchvision.transforms.Normalize, written out
    np.testing.assert_allclose(s.transform(x), expected, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(s.inverse(s.transform(x)), x, atol=1e-6)
    assert Standardizer.from_dict(json.loads(json.dumps(s.to_dict()))) == s
    grey = parse_normalize("0.5/0.25", 1)
    np.testing.assert_allclose(grey.transform(np.full((1, 2, 2), 0.75, np.float32)), 1.0)
    assert parse_normalize("none", 3).transform(x).tolist() == x.tolist()
    with pytest.raises(DataError, match="3 channels for this normalization, got 1"):
        s.transform(x[:, :1])


@pytest.mark.parametrize(("record", "says"), [
    ({"mode": "normalize", "mean": [0.5, 0.5], "std": [0.2, 0.2, 0.2]}, "'mean': one number per channel (3)"),
    ({"mode": "normalize", "mean": [0.5, 0.5, 0.5], "std": [0.2, 0, 0.2]},
     "'std': one number per channel (3), each > 0"),
    ({"mode": "normalize", "mean": [0.5, "a", 0.5], "std": [0.2, 0.2, 0.2]}, "'mean'"),
    ({"mode": "bright"}, "not one of image, pixel, none, normalize"),
])
def test_unusable_records_are_refused_on_load(tmp_path: Path, record: dict, says: str) -> None:
    import nnsee
    from nnsee.train import load_run

    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 2))
    nnsee.adopt(model, class_names=["a", "b"], input_shape=(3, 4, 4), normalize="imagenet", out=tmp_path / "r")
    meta = json.loads((tmp_path / "r" / "run.json").read_text())
    (tmp_path / "r" / "run.json").write_text(json.dumps({**meta, "standardization": record}))
    with pytest.raises(RunError, match="'standardization'") as info:
        load_run(tmp_path / "r", model=nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 2)))
    assert says in str(info.value)
