"""activation_max.as_photo: the maximizing image of an RGB model with --normalize imagenet, back in pixels."""

from __future__ import annotations

import numpy as np

from nnsee.data.standardize import parse_normalize
from nnsee.methods.activation_max import activation_maximization, as_photo
from tests.zoo import resnet18


def test_imagenet_normalization_undone_and_clipped() -> None:
    image = np.random.default_rng(0).normal(0, 1.5, (3, 8, 8)).astype(np.float32)
    photo, outside = as_photo(image, parse_normalize("imagenet", 3))
    mean, std = np.array([0.485, 0.456, 0.406])[:, None, None], np.array([0.229, 0.224, 0.225])[:, None, None]
    pixels = image * std + mean  # torchvision's Normalize, inverted by hand
    np.testing.assert_allclose(photo, np.clip(pixels, 0, 1), atol=1e-6)
    assert outside == np.mean((pixels < 0) | (pixels > 1)) and 0 < outside < 1
    same, none_outside = as_photo(np.full((3, 2, 2), 0.5, np.float32), None)
    assert np.all(same == 0.5) and none_outside == 0


def test_maximized_resnet_image_is_a_colour_photo() -> None:
    model = resnet18(n_classes=3, width=8)
    image = activation_maximization(model, ("layer3.1.conv2", 5), (3, 32, 32), steps=5)
    photo, _ = as_photo(image, parse_normalize("imagenet", 3))
    assert photo.shape == (3, 32, 32) and photo.min() >= 0 and photo.max() <= 1
    assert np.abs(photo[0] - photo[2]).max() > 0.01  # the channels differ: colour


def test_nnsee_maximize_draws_an_rgb_run_as_its_photo(tmp_path) -> None:
    """The CLI's PNG of an RGB run is the maximizing image with torchvision's Normalize inverted by hand (x·std +
    mean, clipped), not the signed colour map of the standardized values."""
    from click.testing import CliRunner
    from PIL import Image

    import nnsee
    from nnsee.cli import main
    from nnsee.train import load_run

    nnsee.adopt(resnet18(n_classes=3, width=8), out=tmp_path / "run", class_names=["a", "b", "c"],
                input_shape=(3, 32, 32), normalize="imagenet", code="tests.zoo:resnet18",
                code_args={"n_classes": 3, "width": 8})
    result = CliRunner().invoke(main, ["maximize", str(tmp_path / "run"), "--target", "b", "--steps", "3",
                                       "--out", str(tmp_path / "b.png"), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert "colour image in pixels" in result.output
    image = activation_maximization(load_run(tmp_path / "run").model, 1, (3, 32, 32), steps=3)
    mean, std = np.array([0.485, 0.456, 0.406])[:, None, None], np.array([0.229, 0.224, 0.225])[:, None, None]
    expected = np.clip(image * std + mean, 0, 1) * 255
    png = Image.open(tmp_path / "b.png")
    assert png.mode == "RGB" and png.size == (160, 160)  # upscaled 5x (168 / 32 rounded)
    drawn = np.asarray(png, dtype=np.float64)[::5, ::5].transpose(2, 0, 1)
    assert np.abs(drawn - expected).max() <= 1.0
