"""SmoothGrad / VarGrad: Captum's NoiseTunnel over the same base method, fed the same noise tensors."""

from __future__ import annotations

from unittest import mock

import numpy as np
import pytest
import torch
from attribution.zf_models import random_cnn

from nnsee.methods.attribution.registry import METHODS, attribute
from nnsee.methods.attribution.smoothgrad import noise_tunnel
from nnsee.methods.base import MethodError

captum_attr = pytest.importorskip("captum.attr")
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:captum.*")

BASES = {  # ours (registry name) -> Captum's method with the same numbers on a 1-channel model
    "saliency": lambda m: (captum_attr.Saliency(m), {"abs": True}),
    "gradient-x-input": lambda m: (captum_attr.InputXGradient(m), {}),
    "guided-backprop": lambda m: (captum_attr.GuidedBackprop(m), {}),
    "integrated-gradients": lambda m: (captum_attr.IntegratedGradients(m), {"n_steps": 50}),
}


def captum_noise_tunnel(model: torch.nn.Module, x: torch.Tensor, target: torch.Tensor, base: str, kind: str,
                        samples: int, stdev: float) -> tuple[np.ndarray, np.ndarray]:
    """Captum's maps and the noise it drew, reshaped to ours: (N, samples, C, H, W)."""
    drawn: list[torch.Tensor] = []
    real_normal = torch.normal

    def normal(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        out = real_normal(*args, **kwargs)
        drawn.append(out)
        return out

    method, extra = BASES[base](model)
    with mock.patch("torch.normal", normal):
        maps = captum_attr.NoiseTunnel(method).attribute(x, nt_type=kind, nt_samples=samples, stdevs=stdev,
                                                         target=target, **extra)
    (noise,) = drawn  # image-major rows: i * samples + s
    return maps.detach().numpy(), noise.reshape(len(x), samples, *x.shape[1:]).numpy()


@pytest.mark.parametrize("kind", ["smoothgrad", "smoothgrad_sq", "vargrad"])
@pytest.mark.parametrize("base", sorted(BASES))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_equals_captum_noise_tunnel_given_the_same_noise(kind: str, base: str, dtype: torch.dtype) -> None:
    model = random_cnn(1, size=12, hidden=5, seed=3).to(dtype)
    torch.manual_seed(1)
    x = torch.randn(3, 1, 12, 12, dtype=dtype)
    target = torch.tensor([0, 2, 1])
    theirs, noise = captum_noise_tunnel(model, x, target, base, kind, samples=7, stdev=0.4)
    ours = noise_tunnel(METHODS[base].run, model, x.numpy(), target, kind=kind, samples=7, noise=noise)
    assert ours.shape == theirs.shape and ours.dtype == theirs.dtype
    scale = np.abs(theirs).max()
    assert scale > 0
    assert np.abs(ours - theirs).max() <= 1e-5 * scale


def test_registered_smoothgrad_is_seeded_batching_free_and_leaves_the_global_rng_alone() -> None:
    model = random_cnn(3, size=10, hidden=4, seed=0)
    x = np.random.default_rng(0).normal(size=(2, 3, 10, 10)).astype(np.float32)
    state = torch.random.get_rng_state()
    a = attribute("smoothgrad", model, x, 1, samples=6, seed=5)
    assert torch.equal(state, torch.random.get_rng_state())
    b = attribute("smoothgrad", model, x, 1, samples=6, seed=5)
    c = attribute("smoothgrad", model, x, 1, samples=6, seed=6)
    np.testing.assert_array_equal(a.maps, b.maps)
    assert not np.array_equal(a.maps, c.maps)
    with mock.patch("nnsee.methods.attribution.smoothgrad.CHUNK_ELEMENTS", 300):  # one noisy copy per pass
        np.testing.assert_allclose(attribute("smoothgrad", model, x, 1, samples=6, seed=5).maps, a.maps,
                                   rtol=1e-6, atol=1e-7)
    assert a.maps.shape == (2, 1, 10, 10) and a.extras["noise_level"] == 0.15


def test_noise_level_is_a_share_of_each_images_range_and_zero_noise_is_the_base_map() -> None:
    model = random_cnn(1, size=10, hidden=4, seed=1)
    x = np.random.default_rng(1).normal(size=(2, 1, 10, 10))
    x[1] *= 100  # a hundred times the range: a hundred times the noise, so a different smoothed map
    plain = attribute("saliency", model, x, 0).maps
    np.testing.assert_allclose(attribute("smoothgrad", model, x, 0, noise_level=0.0, samples=3).maps, plain,
                               rtol=1e-6)
    seen = []
    base = METHODS["saliency"].run

    def spy(model, noisy, target, output):  # noqa: ANN001, ANN202
        seen.append(np.asarray(noisy, dtype=np.float64) - np.concatenate([x] * (len(noisy) // len(x))))
        return base(model, noisy, target, output)

    noise_tunnel(spy, model, x, 0, samples=400, noise_level=0.1)
    noise = np.concatenate(seen).reshape(-1, 2, 100)
    ranges = x.reshape(2, -1).max(1) - x.reshape(2, -1).min(1)
    np.testing.assert_allclose(noise.std(axis=(0, 2)), 0.1 * ranges, rtol=0.02)


def test_bad_options_are_refused_in_one_line() -> None:
    model = random_cnn(1, size=8, hidden=3, seed=0)
    x = np.zeros((1, 1, 8, 8), np.float32)
    for options, words in [({"kind": "median"}, "kind must be one of"), ({"base": "occlusion"}, "base must be one of"),
                           ({"samples": 0}, "samples takes a whole number from 1 to 10000"),
                           ({"sigma": 1}, "has no option sigma")]:
        with pytest.raises(MethodError, match=words):
            attribute("smoothgrad", model, x, 0, **options)
    with pytest.raises(MethodError, match="noise must have shape"):
        noise_tunnel(METHODS["saliency"].run, model, x, 0, samples=2, noise=np.zeros((1, 3, 1, 8, 8)))
