"""Layer by layer for one input: the logits equal the model's own, every layer is there in forward order with its
module's output shape and values (MLP, CNN, a ResNet-18-shaped model with in-place ReLUs and a shared ReLU)."""

import numpy as np
import pytest
import torch
from zoo import photo_like, resnet18

from nnsee.methods import MethodError
from nnsee.methods.layer_by_layer import layer_by_layer
from nnsee.models import build_model


def sequential_reference(model: torch.nn.Sequential, x: torch.Tensor) -> list[tuple[str, np.ndarray]]:
    """Each child of a flat nn.Sequential applied in turn, by hand."""
    out, h = [], x
    with torch.no_grad():
        for name, child in model.named_children():
            h = child(h)
            out.append((name, h[0].numpy().copy()))
    return out


@pytest.mark.parametrize("name,options", [("mlp", {"hidden": [7, 5]}), ("cnn", {"channels": [3, 4], "kernel": 3}),
                                          ("cnn", {"channels": [2], "kernel": 3, "hidden": 6})])
def test_sequential_models_every_layer_and_the_logits(name, options):
    torch.manual_seed(0)
    model = build_model(name, (1, 8, 8), 4, **options).eval()
    x = torch.randn(1, 1, 8, 8)
    view = layer_by_layer(model, x[0].numpy())
    expected = sequential_reference(model, x)
    assert [layer.name for layer in view.layers] == [n for n, _ in expected]  # none skipped, in forward order
    for layer, (_, values) in zip(view.layers, expected, strict=True):
        assert layer.shape == values.shape and layer.values.shape == values.shape
        np.testing.assert_allclose(layer.values, values, rtol=1e-6, atol=1e-6)
        assert layer.kind == type(dict(model.named_children())[layer.name]).__name__
    with torch.no_grad():
        direct = model(x)[0].numpy()
    np.testing.assert_array_equal(view.logits, direct)
    np.testing.assert_allclose(view.layers[-1].values, direct)
    p = np.exp(direct.astype(np.float64) - direct.max())
    np.testing.assert_allclose(view.probabilities, p / p.sum(), rtol=1e-12)
    assert view.probabilities.dtype == np.float64 and view.input.shape == (1, 8, 8)


def test_resnet_shaped_model_shapes_logits_and_in_place_relus():
    model = resnet18(n_classes=5, width=4, in_channels=3, shared_relu=True)
    x = photo_like(1, 32)
    view = layer_by_layer(model, x[0].numpy())
    with torch.no_grad():
        direct = model(x)[0].numpy()
        stem = model.bn1(model.conv1(x))  # before the in-place ReLU
        block_out = model.layer2(model.layer1(model.maxpool(torch.relu(stem))))
    np.testing.assert_allclose(view.logits, direct, rtol=1e-5, atol=1e-6)
    shapes = {layer.name: layer.shape for layer in view.layers}
    assert shapes["conv1"] == (4, 16, 16) and shapes["maxpool"] == (4, 8, 8) and shapes["avgpool"] == (32, 1, 1)
    assert shapes["layer2.0.downsample.0"] == (8, 4, 4) and shapes["fc"] == (5,)
    byname = {layer.name: layer for layer in view.layers}
    # bn1's output was kept before relu (in place) overwrote it
    np.testing.assert_allclose(byname["bn1"].values, stem[0].numpy(), rtol=1e-5, atol=1e-6)
    assert (byname["bn1"].values < 0).any()
    # a shared ReLU called twice per block: its calls are told apart; the block's last call is the block's output
    assert "layer2.1.relu" in shapes and "layer2.1.relu#2" in shapes
    np.testing.assert_allclose(byname["layer2.1.relu#2"].values, block_out[0].numpy(), rtol=1e-5, atol=1e-6)
    n_leaves = sum(1 for m in model.modules() if next(m.children(), None) is None)
    assert len(view.layers) >= n_leaves  # every leaf at least once (the shared ReLUs twice)


def test_refusals():
    torch.manual_seed(0)
    model = build_model("mlp", (1, 4, 4), 3, hidden=[5])
    with pytest.raises(MethodError, match="one image"):
        layer_by_layer(model, np.zeros((2, 1, 4, 4), np.float32))
    with pytest.raises(MethodError, match="shape"):
        layer_by_layer(model, np.zeros((1, 5, 5), np.float32), input_shape=(1, 4, 4))
    was_training = model.train().training
    layer_by_layer(model, np.zeros((1, 4, 4), np.float32))
    assert was_training and model.training  # train mode given back
