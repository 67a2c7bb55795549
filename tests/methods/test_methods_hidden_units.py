import sys
from collections import OrderedDict

import numpy as np
import pytest
import torch
from methods.hand_models import FOUR_IMAGES, FOUR_LABELS, MLP_B1, MLP_W1, MLP_W2, mlp_2x2, softmax_2x2
from torch import nn

import nnsee.methods.unit_ablation  # noqa: F401  (its module object, for the hooked path)
from nnsee.methods import (
    MethodError,
    UnitCard,
    ablation_effect,
    hidden_activations,
    hidden_biases,
    incoming_weights,
    outgoing_weights,
    top_images_per_unit,
    unit_cards,
)
from nnsee.methods.base import zero_units
from nnsee.models import MLP

# Hand-worked ablation on FOUR_IMAGES (see hand_models.py), logits = W_out h + [0.1, 0]:
#   A [1,1,0,0] y=0: h=[2,0,0]   z=[4.1,−2]   → 0 ✓    B [0,0,1,1] y=1: h=[0,2,0] z=[−1.9,4] → 1 ✓
#   C [1,0,1,0] y=1: h=[1,1,1.5] z=[1.1,1.75] → 1 ✓    D [1,1,.5,.5] y=0: h=[2,1,0] z=[3.1,0] → 0 ✓
# unit 0 off: A z=[0.1,0] ✓, B ✓, C z=[−0.9,2.75] ✓, D z=[−0.9,2] ✗      → class 0: −0.5, class 1: 0
# unit 1 off: A ✓, B z=[0.1,0] ✗, C z=[2.1,−0.25] ✗, D ✓                → class 0: 0,    class 1: −1
# unit 2 off: A, B, D unchanged (h_2 = 0), C z=[1.1,1] ✗               → class 0: 0,    class 1: −0.5
ABLATION = [[-0.5, 0.0], [0.0, -1.0], [0.0, -0.5]]


def test_incoming_outgoing_biases_golden():
    model = mlp_2x2()
    w_in = incoming_weights(model)
    assert w_in.shape == (3, 1, 2, 2) and w_in[2, 0].tolist() == [[1, -1], [1, -1]]
    np.testing.assert_array_equal(w_in.reshape(3, 4), MLP_W1)
    np.testing.assert_array_equal(outgoing_weights(model), MLP_W2)
    np.testing.assert_array_equal(hidden_biases(model), MLP_B1)
    h = hidden_activations(model, FOUR_IMAGES)
    np.testing.assert_array_equal(h, [[2, 0, 0], [0, 2, 0], [1, 1, 1.5], [2, 1, 0]])


def test_incoming_weights_keep_rgb_layout():
    model = MLP((3, 2, 2), 2, hidden=(4,))
    with torch.no_grad():
        model.fc1.weight.copy_(torch.arange(48, dtype=torch.float32).reshape(4, 12))
    w = incoming_weights(model)
    assert w.shape == (4, 3, 2, 2) and w[3, 1, 0, 1] == 36 + 4 + 1


def test_layer_errors_say_what_applies():
    deep = MLP((1, 2, 2), 2, hidden=(3, 3))
    with pytest.raises(MethodError, match="not the image.*'fc1'"):
        incoming_weights(deep, layer="fc2")
    with pytest.raises(MethodError, match="feeds 'fc2', not the output layer"):
        outgoing_weights(deep, "fc1")
    assert outgoing_weights(deep, "fc2").shape == (2, 3)
    with pytest.raises(MethodError, match="output layer.*classes"):
        incoming_weights(mlp_2x2(), layer="out")
    with pytest.raises(MethodError, match="no hidden layer 'fc1'.*use class_templates"):
        incoming_weights(softmax_2x2())
    with pytest.raises(MethodError, match="softmax and mlp"):
        top_images_per_unit(nn.Sequential(nn.Conv2d(1, 1, 1), nn.Flatten(), nn.Linear(4, 2)), FOUR_IMAGES, "2")
    with pytest.raises(MethodError, match="one-hidden-layer MLP"):
        unit_cards(deep, FOUR_IMAGES, FOUR_IMAGES, FOUR_LABELS, ["a", "b"])


def test_top_images_per_unit_golden_with_ties():
    idx, val = top_images_per_unit(mlp_2x2(), FOUR_IMAGES, k=3, batch_size=1)
    # unit 0: h = [2,0,1,2] → 0 and 3 tie at 2 (lower index first), then 2
    # unit 1: h = [0,2,1,1] → 1, then the tie 2, 3;  unit 2: h = [0,0,1.5,0] → 2, then 0, 1 (ties at 0)
    assert idx.tolist() == [[0, 3, 2], [1, 2, 3], [2, 0, 1]]
    np.testing.assert_array_equal(val, [[2, 2, 1], [2, 1, 1], [1.5, 0, 0]])
    idx, _ = top_images_per_unit(mlp_2x2(), FOUR_IMAGES, k=9)
    assert idx.shape == (3, 4)  # k capped at N


def identity_net(d: int, dtype: torch.dtype = torch.float32) -> nn.Sequential:
    """fc1 = identity with no nonlinearity, so unit j's activation is pixel j exactly."""
    layers = OrderedDict(flatten=nn.Flatten(), fc1=nn.Linear(d, d), act1=nn.Identity(), out=nn.Linear(d, 2))
    model = nn.Sequential(layers).to(dtype)
    with torch.no_grad():
        model.fc1.weight.copy_(torch.eye(d))
        model.fc1.bias.zero_()
    return model


@pytest.mark.parametrize("batch_size", [1, 2, 7, 64, 1000])
@pytest.mark.parametrize("k", [1, 5, 60])
def test_top_images_per_unit_streaming_equals_a_full_sort(batch_size, k):
    rng = np.random.default_rng(batch_size * 100 + k)
    values = rng.integers(-3, 4, size=(50, 1, 2, 3)).astype(np.float32) / 4  # many ties
    idx, val = top_images_per_unit(identity_net(6), values, "fc1", k=k, batch_size=batch_size)
    flat = values.reshape(50, 6)
    k_eff = min(k, 50)
    for j in range(6):
        expect = np.lexsort((np.arange(50), -flat[:, j]))[:k_eff]
        assert idx[j].tolist() == expect.tolist()
        np.testing.assert_array_equal(val[j], flat[expect, j])


def reference_ablation(model: MLP, images: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """By hand: h with unit j zeroed, pushed through the output layer, per-class accuracy minus the base one."""
    x = torch.as_tensor(images, dtype=model.fc1.weight.dtype).flatten(1)
    with torch.no_grad():
        h = model.act1(model.fc1(x))
        k = model.out.out_features

        def acc(hh: torch.Tensor) -> np.ndarray:
            pred = model.out(hh).argmax(1).numpy()
            return np.array([(pred[labels == c] == c).mean() for c in range(k)])

        base = acc(h)
        rows = []
        for j in range(h.shape[1]):
            hj = h.clone()
            hj[:, j] = 0
            rows.append(acc(hj) - base)
    return np.array(rows)


def test_ablation_golden():
    np.testing.assert_array_equal(ablation_effect(mlp_2x2(), FOUR_IMAGES, FOUR_LABELS, n_classes=2), ABLATION)
    np.testing.assert_array_equal(reference_ablation(mlp_2x2(), FOUR_IMAGES, FOUR_LABELS), ABLATION)


def test_ablation_exact_matches_hooked_and_hand_reference(monkeypatch):
    torch.manual_seed(3)
    model = MLP((1, 3, 3), 4, hidden=(40,), activation="tanh").double()
    rng = np.random.default_rng(4)
    images = rng.normal(size=(150, 1, 3, 3))
    labels = model(torch.as_tensor(images)).argmax(1).detach().numpy()  # the model is right, ablation can only hurt
    labels[::7] = rng.integers(0, 4, size=len(labels[::7]))
    reference = reference_ablation(model, images, labels)
    assert (reference != 0).any()
    for batch_size in (1, 13, 1000):
        np.testing.assert_allclose(ablation_effect(model, images, labels, batch_size=batch_size), reference, atol=1e-12)
    module = sys.modules["nnsee.methods.unit_ablation"]
    monkeypatch.setattr(module, "_exact_batch", module._hooked_batch)  # the hooked path on the same layer
    np.testing.assert_allclose(ablation_effect(model, images, labels), reference, atol=1e-12)


def test_ablation_of_a_deeper_layer_uses_hooks_and_marks_empty_classes_nan():
    torch.manual_seed(5)
    model = MLP((1, 2, 2), 3, hidden=(4, 5)).double()
    images = np.random.default_rng(6).normal(size=(40, 1, 2, 2))
    labels = np.random.default_rng(7).integers(0, 2, size=40)  # class 2 never appears
    delta = ablation_effect(model, images, labels, "fc1")
    x = torch.as_tensor(images)
    base = model(x).argmax(1).detach().numpy()
    for j in range(4):
        with zero_units(model, "act1", [j]):
            pred = model(x).argmax(1).detach().numpy()
        for c in range(2):
            m = labels == c
            assert delta[j, c] == pytest.approx((pred[m] == c).mean() - (base[m] == c).mean())
    assert np.isnan(delta[:, 2]).all()
    with pytest.raises(MethodError, match="class indices 0..2"):
        ablation_effect(model, images, labels + 5, "fc1")


def test_unit_cards_golden():
    cards = unit_cards(mlp_2x2(), FOUR_IMAGES, FOUR_IMAGES, FOUR_LABELS, ["top", "bottom"], k=2, sort_by="index")
    assert [c.unit for c in cards] == [0, 1, 2] and all(isinstance(c, UnitCard) for c in cards)
    c0, c1, c2 = cards
    assert c0.incoming.shape == (1, 2, 2) and c0.incoming[0].tolist() == [[1, 1], [0, 0]]
    assert c0.outgoing.tolist() == [2, -1] and c0.bias == 0 and (c0.promotes, c0.suppresses) == (0, 1)
    assert (c1.promotes, c1.suppresses) == (1, 0) and (c2.promotes, c2.suppresses) == (1, 0)
    assert c2.bias == -0.5
    assert c0.top_images.tolist() == [0, 3] and c0.top_activations.tolist() == [2, 2]
    assert c2.top_images.tolist() == [2, 0] and c2.top_activations.tolist() == [1.5, 0]
    np.testing.assert_array_equal([c.ablation for c in cards], ABLATION)
    assert [c.importance["ablation"] for c in cards] == [0.5, 1.0, 0.5]
    assert [c.importance["ablation_overall"] for c in cards] == [0.25, 0.5, 0.25]
    assert [c.importance["outgoing_norm"] for c in cards] == pytest.approx([5**0.5, 5**0.5, 0.5])
    # outgoing norm: √5, √5 (tie to the lower unit), 0.5; ablation, by the largest mean probability drop (see
    # test_unit_ablation.py: p(0) falls by 0.4238 without unit 0, p(1) by 0.2833 without unit 1, by 0.0455 without 2)
    args = (mlp_2x2(), FOUR_IMAGES, FOUR_IMAGES, FOUR_LABELS, ["top", "bottom"])
    assert [c.unit for c in unit_cards(*args)] == [0, 1, 2]
    ranked = unit_cards(*args, sort_by="ablation")
    assert [c.unit for c in ranked] == [0, 1, 2]
    assert [c.importance["probability_drop"] for c in ranked] == pytest.approx([0.42379, 0.28327, 0.04550], abs=1e-5)
    assert ranked[0].probability.shape == (2,) and ranked[0].logit.tolist() == pytest.approx([-2.5, 1.25])
    with pytest.raises(MethodError, match="sort_by"):
        unit_cards(*args, sort_by="fun")
    with pytest.raises(MethodError, match="2 classes but 3 class names"):
        unit_cards(mlp_2x2(), FOUR_IMAGES, FOUR_IMAGES, FOUR_LABELS, ["a", "b", "c"])


def test_unit_cards_without_validation_images():
    cards = unit_cards(mlp_2x2(), FOUR_IMAGES, FOUR_IMAGES[:0], FOUR_LABELS[:0], ["top", "bottom"])
    assert all(np.isnan(c.ablation).all() and np.isnan(c.importance["ablation"]) for c in cards)


def test_unit_cards_300_units_rgb_shapes():
    torch.manual_seed(8)
    model = MLP((3, 4, 4), 5, hidden=(300,))
    rng = np.random.default_rng(9)
    train = rng.normal(size=(500, 3, 4, 4)).astype(np.float32)
    val, labels = train[:100], rng.integers(0, 5, size=100)
    cards = unit_cards(model, train, val, labels, list("abcde"), sort_by="ablation")
    assert len(cards) == 300 and sorted(c.unit for c in cards) == list(range(300))
    c = cards[0]
    assert c.incoming.shape == (3, 4, 4) and c.outgoing.shape == (5,) and c.ablation.shape == (5,)
    assert c.top_images.shape == (9,) and c.top_activations.shape == (9,)
    drops = [x.importance["probability_drop"] for x in cards]
    assert drops == sorted(drops, reverse=True) and drops[-1] > 0
    assert c.probability.shape == (5,) and c.importance["probability_drop"] == -c.probability.min()
