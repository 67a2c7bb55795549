"""Dataset views at the forward floor on deep nets (issue 13, part 3): the top-9 of several stages in one pass that
stops after the deepest, projections without a whole gradient pass per batch, Grad-CAM of every stage in one pass
per chunk; each against an independent reference, with the work past the layer counted by a counter module."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from zoo import photo_like, resnet18

from nnsee.methods.attribution.grad_cam import grad_cams
from nnsee.methods.dataset_views.projections import top9_projections
from nnsee.methods.dataset_views.top_images import top_images_per_channel, top_images_per_layer

STAGES = ["conv1", "layer1", "layer2", "layer3"]


class Counter(nn.Module):
    """The identity, counting the real (not ``meta``) images that pass through it."""

    def __init__(self) -> None:
        super().__init__()
        self.images = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.device.type != "meta":
            self.images += len(x)
        return x


def counted(model: nn.Module, before: str) -> Counter:
    """Put a :class:`Counter` in front of the child ``before`` of ``model`` (shared modules, same outputs)."""
    counter = Counter()
    setattr(model, before, nn.Sequential(counter, getattr(model, before)))
    return counter


def every_activation(model: nn.Module, x: torch.Tensor, layers: list[str]) -> dict[str, np.ndarray]:
    """Every activation of ``layers`` for all of ``x`` in one plain forward pass, kept in full (float64)."""
    kept: dict[str, np.ndarray] = {}
    modules = dict(model.named_modules())
    handles = [modules[name].register_forward_hook(
        lambda _m, _i, out, name=name: kept.__setitem__(name, out.detach().double().numpy().copy()))
        for name in layers]
    with torch.no_grad():
        model(x)
    for h in handles:
        h.remove()
    return kept


def test_several_stages_in_one_pass_equal_every_activation_kept_and_stop_after_the_deepest() -> None:
    """float64 ResNet-18 shape: values and image indices (lower index first on ties) and positions against numpy
    over every activation; the images that reach layer4 (past the deepest stage) are counted: none."""
    model = resnet18(n_classes=5, width=4, dtype=torch.float64)
    x = photo_like(37, 48, dtype=torch.float64)
    full = every_activation(model, x, STAGES)
    past = counted(model, "layer4")
    tops = top_images_per_layer(model, x.numpy(), STAGES, k=9, batch_size=5)
    assert past.images == 0  # the old pass ran all 37 images through layer4 and the head
    for layer in STAGES:
        a = full[layer]
        flat = a.reshape(*a.shape[:2], -1)
        best, where = flat.max(-1), flat.argmax(-1)  # (N, F): each map's maximum and its first position
        order = np.stack([np.lexsort((np.arange(len(a)), -best[:, f]))[:9] for f in range(a.shape[1])])
        np.testing.assert_array_equal(tops[layer].image_index, order, err_msg=layer)
        np.testing.assert_allclose(tops[layer].values, np.take_along_axis(best.T, order, 1), rtol=1e-12, atol=0)
        pos = np.take_along_axis(where.T, order, 1)
        np.testing.assert_array_equal(tops[layer].position, np.stack([pos // a.shape[3], pos % a.shape[3]], -1))
        assert tops[layer].n_images == 37


def test_a_stream_stops_after_its_stage_and_equals_the_array() -> None:
    """Batches from a callable (as a data loader gives them): the pass stops at layer1, nothing reaches layer2."""
    model = resnet18(n_classes=5, width=4)
    x = photo_like(20, 40).numpy()
    past = counted(model, "layer2")
    streamed = top_images_per_channel(model, lambda: (x[s : s + 6] for s in range(0, 20, 6)), "layer1", k=4)
    assert past.images == 0
    whole = top_images_per_channel(model, x, "layer1", k=4, batch_size=20)
    np.testing.assert_array_equal(streamed.image_index, whole.image_index)
    np.testing.assert_allclose(streamed.values, whole.values, rtol=1e-6)


captum_attr = pytest.importorskip("captum.attr")


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_projections_equal_captum_and_run_no_pass_past_the_layer() -> None:
    """Each projection of layer2's top-3 equals Captum's NeuronDeconvolution of that unit on its image; the
    gradient passes stop at layer2: no image reaches layer3 (before, every batch first ran the whole model with
    gradients on, only to count the layer's calls)."""
    model = resnet18(n_classes=5, width=4)
    x = photo_like(14, 48).numpy()
    top = top_images_per_channel(model, x, "layer2", k=3)
    past = counted(model, "layer3")
    proj = top9_projections(model, x, top, batch_size=4)
    assert past.images == 0
    model.layer3 = model.layer3[1]  # the counter out again: Captum gets the model as it was
    deconv = captum_attr.NeuronDeconvolution(model, model.layer2)
    for c, j in [(0, 0), (3, 2), (7, 1)]:
        i, (py, px) = top.image_index[c, j], top.position[c, j]
        theirs = deconv.attribute(torch.from_numpy(x[i : i + 1]), (int(c), int(py), int(px)))[0].numpy()
        assert np.abs(theirs).max() > 0
        np.testing.assert_allclose(proj.projections[c, j], theirs, rtol=0, atol=1e-5 * np.abs(theirs).max())


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_grad_cam_of_every_stage_in_chunks_equals_captum() -> None:
    """grad_cams of three stages, 5 images in chunks of 2, against Captum's LayerGradCam of each stage alone; one
    forward pass per chunk (3 chunks), not one per image and stage (15)."""
    model = resnet18(n_classes=5, width=4)
    x = photo_like(5, 40)
    target = [0, 4, 2, 2, 1]
    seen = counted(model, "conv1")
    cams = grad_cams(model, x, target, ["layer1", "layer2", "layer3"], batch_size=2)
    assert seen.images == 5
    model.conv1 = model.conv1[1]
    for layer in ("layer1", "layer2", "layer3"):
        theirs = captum_attr.LayerGradCam(model, getattr(model, layer)).attribute(
            x, target=target, relu_attributions=True)[:, 0].detach().numpy()
        assert np.abs(theirs).max() > 0, layer
        np.testing.assert_allclose(cams[layer], theirs, rtol=0, atol=1e-5 * np.abs(theirs).max(), err_msg=layer)
