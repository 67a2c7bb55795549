"""Hand-weighted tiny models on 2×2 one-channel "images", with numbers worked out by hand in the tests."""

from __future__ import annotations

import numpy as np
import torch

from nnsee.models import MLP, SoftmaxRegression

# Softmax regression, D = 4 pixels (row-major: top-left, top-right, bottom-left, bottom-right), K = 3 classes.
SOFTMAX_W = np.array([[1.0, 0.0, 0.0, -1.0], [0.0, 2.0, 0.0, 0.0], [-1.0, 0.0, 3.0, 1.0]])
SOFTMAX_B = np.array([0.5, -1.0, 0.0])

# MLP 4 → 3 ReLU units → 2 classes.
#   unit 0 sees the top row, unit 1 the bottom row, unit 2 the left column minus the right one (bias −0.5).
#   Class 0 ("top") gets +2 from unit 0 and −1 from unit 1; class 1 ("bottom") −1, +2 and +0.5 from unit 2.
MLP_W1 = np.array([[1.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 1.0], [1.0, -1.0, 1.0, -1.0]])
MLP_B1 = np.array([0.0, 0.0, -0.5])
MLP_W2 = np.array([[2.0, -1.0, 0.0], [-1.0, 2.0, 0.5]])
MLP_B2 = np.array([0.1, 0.0])

# Four images and their labels: A top row (0), B bottom row (1), C left column (1), D top + half bottom (0).
FOUR_IMAGES = np.array([[1, 1, 0, 0], [0, 0, 1, 1], [1, 0, 1, 0], [1, 1, 0.5, 0.5]], np.float32).reshape(4, 1, 2, 2)
FOUR_LABELS = np.array([0, 1, 1, 0])


def _set(linear: torch.nn.Linear, w: np.ndarray, b: np.ndarray) -> None:
    with torch.no_grad():
        linear.weight.copy_(torch.as_tensor(w))
        linear.bias.copy_(torch.as_tensor(b))


def softmax_2x2(dtype: torch.dtype = torch.float32) -> SoftmaxRegression:
    model = SoftmaxRegression((1, 2, 2), 3).to(dtype)
    _set(model.out, SOFTMAX_W, SOFTMAX_B)
    return model


def mlp_2x2(dtype: torch.dtype = torch.float32) -> MLP:
    model = MLP((1, 2, 2), 2, hidden=(3,), activation="relu").to(dtype)
    _set(model.fc1, MLP_W1, MLP_B1)
    _set(model.out, MLP_W2, MLP_B2)
    return model
