"""Hidden-unit cards: what each unit of an MLP's hidden layer looks for, whom it votes for, and what it is worth.

For hidden unit j of ``h = act(W_1 x + b_1)``, ``logits = W_out h + b_out`` (torch's (out, in) layout):

* incoming weights ``W_1[j]`` reshaped to the image's shape (the pattern the unit's pre-activation matches),
  and its bias ``b_1[j]``;
* outgoing weights ``W_out[:, j]`` (K,): how much a unit activation of 1 adds to each class's score;
* the training images with the largest activation ``h_j`` (top k, ties to the lower index);
* its ablation effect: per-class accuracy with ``h_j`` set to 0 minus the accuracy without ablation, and the finer
  mean change of each class's probability and logit (:mod:`nnsee.methods.unit_ablation`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from nnsee.errors import not_one_of
from nnsee.methods.base import (
    MethodError,
    Stage,
    batches,
    dense_stages,
    evaluating,
    forward_to,
    hidden_stage,
    param_of,
    resolve_input_shape,
    to_batch,
    to_numpy,
)
from nnsee.methods.unit_ablation import UnitAblation, unit_ablation

SORT_KEYS = ("outgoing-norm", "ablation", "index")
Transform = Callable[[np.ndarray], np.ndarray]


def _reading_image(model: nn.Module, layer: str, input_shape: Sequence[int] | None, what: str) -> list[Stage]:
    stages = dense_stages(model, input_shape, what)
    if hidden_stage(stages, layer, what) != 0:
        raise MethodError(
            f"{what}: {layer!r} reads the units of {stages[0].name!r}, not the image, so its weights are not images; "
            f"use the first hidden layer {stages[0].name!r}"
        )
    return stages


def _feeding_output(model: nn.Module, layer: str, what: str) -> tuple[list[Stage], int]:
    stages = dense_stages(model, None, what)
    i = hidden_stage(stages, layer, what)
    if i != len(stages) - 2:
        raise MethodError(
            f"{what}: {layer!r} feeds {stages[i + 1].name!r}, not the output layer {stages[-1].name!r}; outgoing "
            "weights to the classes exist only for the last hidden layer (a one-hidden-layer MLP such as nnsee's mlp "
            f"with one --hidden size has it as {stages[0].name!r})"
        )
    return stages, i


def incoming_weights(model: nn.Module, input_shape: Sequence[int] | None = None, layer: str = "fc1") -> np.ndarray:
    """``W_1[j]`` reshaped to ``(U, *input_shape)`` for the hidden layer ``layer`` that reads the flattened image."""
    shape = resolve_input_shape(model, input_shape)
    stages = _reading_image(model, layer, shape, "incoming weights")
    w = stages[0].linear.weight
    return to_numpy(w).reshape(w.shape[0], *shape).copy()


def hidden_biases(model: nn.Module, layer: str = "fc1") -> np.ndarray:
    """``b[j]`` of hidden layer ``layer`` (U,); zeros if the layer has no bias."""
    stages = dense_stages(model, None, "hidden biases")
    lin = stages[hidden_stage(stages, layer, "hidden biases")].linear
    if lin.bias is None:
        return np.zeros(lin.out_features, dtype=to_numpy(lin.weight[:0]).dtype)
    return to_numpy(lin.bias).copy()


def outgoing_weights(model: nn.Module, layer: str = "fc1") -> np.ndarray:
    """``W_out`` (K, U): column j is hidden unit j's weights to every class (``layer`` must feed the output)."""
    stages, _ = _feeding_output(model, layer, "outgoing weights")
    return to_numpy(stages[-1].linear.weight).copy()


def hidden_activations(
    model: nn.Module, images_std: np.ndarray, layer: str = "fc1", batch_size: int = 1024,
    transform: Transform | None = None,
) -> np.ndarray:
    """``h = act(W x + b)`` of hidden layer ``layer`` for standardized images (N, C, H, W) → (N, U) (``transform``:
    see :func:`top_images_per_unit`)."""
    stages = dense_stages(model, None, "hidden activations")
    i = hidden_stage(stages, layer, "hidden activations")
    shape = tuple(images_std.shape[1:])
    with evaluating(model):
        out = [forward_to(stages, to_batch(xb, shape, model), i).cpu()
               for _, xb in batches(images_std, batch_size, transform)]
    return torch.cat(out).numpy() if out else np.zeros((0, stages[i].linear.out_features), np.float32)


def top_images_per_unit(
    model: nn.Module, images_std: np.ndarray, layer: str = "fc1", k: int = 9, batch_size: int = 1024,
    transform: Transform | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Per unit of the dense hidden layer ``layer``, the ``k`` images with the largest activation ``h_j``:
    ``(indices (U, k), values (U, k))``. (For any layer's channels, scored by their maps' maxima, see
    :func:`nnsee.methods.dataset_views.top_images.top_images_per_channel`.)

    One streaming pass; memory is O(U·(k + batch_size)), independent of N. Ties go to the lower image index;
    NaN activations rank lowest (as −inf). With fewer than ``k`` images, k = N. ``transform`` (a run's
    standardization) turns each batch of ``images_std`` into what the model sees, so the images may be given as
    stored, a streamed set (:class:`~nnsee.data.lazy.LazyImages`) included: no transformed copy of the set is made.
    """
    if k < 1:
        raise MethodError(f"k must be at least 1, got {k}")
    stages = dense_stages(model, None, "top-activating images")
    i = hidden_stage(stages, layer, "top-activating images")
    n_units = stages[i].linear.out_features
    shape = tuple(np.shape(images_std)[1:])
    device, dtype = param_of(model)
    best_v = torch.empty(n_units, 0, dtype=dtype, device=device)
    best_i = torch.empty(n_units, 0, dtype=torch.long, device=device)
    with evaluating(model):
        for start, xb in batches(images_std, batch_size, transform):
            h = forward_to(stages, to_batch(xb, shape, model), i).nan_to_num(nan=-torch.inf).T  # (U, B)
            values, index = _entrants(h, best_v, k, start)
            if values.shape[1]:
                best_v, best_i = _merge_top(torch.cat([best_v, values], 1), torch.cat([best_i, index], 1), k)
    return to_numpy(best_i).astype(np.int64), to_numpy(best_v)


def _entrants(h: torch.Tensor, best_v: torch.Tensor, k: int, start: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The batch's activations ``h`` (U, B) that can enter the running top ``k`` (``best_v``, each row sorted
    descending), with their image indices, positions ascending in each row.

    Once a row holds k values, only a value above its k-th (t) can enter: an equal one comes later in the data
    set and loses the tie. So the batch's top m per row, m = the most values above t in any row, hold every
    entrant (the m-th of the row with m is above t and the next is not, so no tie straddles the cut); the rest of
    those m are at most t and the merge leaves them out. After the first batches m is small: the merge touches a
    few columns, not the batch."""
    n = h.shape[1]
    if best_v.shape[1] >= k:
        m = int((h > best_v[:, k - 1 : k]).sum(1).max()) if n else 0
        if m < n:
            values, position = torch.topk(h, m, dim=1)
            position, order = torch.sort(position, dim=1)
            return values.gather(1, order), position + start
    return h, torch.arange(start, start + n, device=h.device).expand(h.shape[0], n)


def _merge_top(values: torch.Tensor, index: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per row, the ``k`` largest ``values`` ordered by (value descending, index ascending).

    ``index`` must ascend along each row among equal values (true for "running top-k, then a later batch").
    ``topk`` finds the k-th value t exactly; every value > t is in, and of those equal to t the first ones by
    position (= lowest index) fill the rest, so the choice is exact without sorting the whole row.
    """
    k = min(k, values.shape[1])
    t = torch.topk(values, k, dim=1).values[:, -1:]
    above = values > t
    equal = values == t
    take = above | (equal & (torch.cumsum(equal, dim=1) <= k - above.sum(1, keepdim=True)))
    v, ix = values[take].view(-1, k), index[take].view(-1, k)
    order = torch.sort(v, dim=1, descending=True, stable=True).indices
    return v.gather(1, order), ix.gather(1, order)


def per_class_accuracy(predicted: np.ndarray, labels: np.ndarray, n_classes: int) -> np.ndarray:
    """``acc[k] = #(predicted == y == k) / #(y == k)`` (K,), NaN for a class with no examples."""
    labels = np.asarray(labels, dtype=np.int64)
    correct = np.bincount(labels[np.asarray(predicted) == labels], minlength=n_classes).astype(np.float64)
    support = np.bincount(labels, minlength=n_classes).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(support > 0, correct / np.where(support > 0, support, 1), np.nan)


def ablation_effect(
    model: nn.Module,
    images_std: np.ndarray,
    labels: np.ndarray,
    layer: str = "fc1",
    n_classes: int | None = None,
    batch_size: int = 1024,
    transform: Transform | None = None,
) -> np.ndarray:
    """``Δ[j, k] = acc_k(h_j := 0) − acc_k`` (U, K): per-class accuracy change when unit j is switched off.

    A negative value is an accuracy drop; NaN for a class without images. Switching off sets the unit's
    activation (after its nonlinearity) to 0. When ``layer`` feeds the output layer the ablated logits are exactly
    ``z − h_j · W_out[:, j]``, computed for all units at once in float64; for deeper layers each unit takes one
    hooked forward pass over the images (U passes). ``transform``: as in :func:`top_images_per_unit`. (The same
    pass gives the finer mean change of each class's probability: :func:`nnsee.methods.unit_ablation.unit_ablation`.)
    """
    return _checked_ablation(model, images_std, labels, layer, n_classes, batch_size, transform).accuracy


def _checked_ablation(model: nn.Module, images_std: np.ndarray, labels: np.ndarray, layer: str,
                      n_classes: int | None, batch_size: int, transform: Transform | None) -> UnitAblation:
    stages = dense_stages(model, None, "ablation effect")
    hidden_stage(stages, layer, "ablation effect")
    k_out = stages[-1].linear.out_features
    if n_classes is not None and int(n_classes) != k_out:
        raise MethodError(f"ablation effect: the model has {k_out} classes, not {n_classes}")
    return unit_ablation(model, images_std, layer=layer, batch_size=batch_size, transform=transform, labels=labels)


@dataclass
class UnitCard:
    """Everything one hidden unit's card shows (arrays in the model's dtype; class indices into class_names).

    ``importance``: ``outgoing_norm = ‖W_out[:, j]‖``, ``ablation = max_k(−Δ[j, k])`` (the largest per-class
    accuracy drop, NaN without validation images), ``ablation_overall`` (drop of overall validation accuracy) and
    ``probability_drop = max_k(−Δp[j, k])`` (the largest mean drop of a class's probability, NaN without images).
    """

    unit: int
    incoming: np.ndarray  # (C, H, W)
    outgoing: np.ndarray  # (K,)
    bias: float
    promotes: int  # argmax_k W_out[k, j]
    suppresses: int  # argmin_k W_out[k, j]
    top_images: np.ndarray  # (k,) indices into the training images, most activating first
    top_activations: np.ndarray  # (k,)
    ablation: np.ndarray  # (K,) per-class accuracy change when switched off
    importance: dict[str, float] = field(default_factory=dict)
    probability: np.ndarray = field(default_factory=lambda: np.zeros(0))  # (K,) mean Δp_k when switched off
    logit: np.ndarray = field(default_factory=lambda: np.zeros(0))  # (K,) mean Δz_k when switched off


def unit_cards(
    model: nn.Module,
    images_std_train: np.ndarray,
    val_images_std: np.ndarray,
    val_labels: np.ndarray,
    class_names: Sequence[str],
    layer: str = "fc1",
    sort_by: str = "outgoing-norm",
    k: int = 9,
    batch_size: int = 1024,
    transform: Transform | None = None,
) -> list[UnitCard]:
    """One :class:`UnitCard` per unit of the hidden layer ``layer`` that reads the image and feeds the output.

    ``sort_by``: ``outgoing-norm`` (descending), ``ablation`` (the largest mean drop of a class's probability when
    switched off, descending; ties by the largest accuracy drop) or ``index``; remaining ties to the lower unit.
    Top images come from ``images_std_train``, ablation from the validation images and labels; with ``transform``
    (a run's standardization) both image sets are given as stored (arrays or streamed sets) and transformed batch
    by batch.
    """
    if sort_by not in SORT_KEYS:
        raise MethodError(not_one_of("sort_by", sort_by, SORT_KEYS))
    what = "unit cards"
    shape = tuple(np.shape(images_std_train)[1:])
    stages = dense_stages(model, shape, what)
    if len(stages) != 2 or layer != stages[0].name:
        raise MethodError(
            f"{what} apply to a hidden layer that reads the image and feeds the output layer (a one-hidden-layer MLP, "
            f"e.g. nnsee's mlp with one --hidden size, layer {stages[0].name!r}); this model's Linear layers are "
            f"{', '.join(s.name for s in stages)}. Use incoming_weights/top_images_per_unit/ablation_effect per layer"
        )
    n_classes = stages[-1].linear.out_features
    if len(class_names) != n_classes:
        raise MethodError(f"{what}: the model has {n_classes} classes but {len(class_names)} class names were given")
    incoming = incoming_weights(model, shape, layer)
    outgoing = outgoing_weights(model, layer)
    bias = hidden_biases(model, layer)
    top_i, top_v = top_images_per_unit(model, images_std_train, layer, k, batch_size, transform)
    fine = _checked_ablation(model, val_images_std, val_labels, layer, n_classes, batch_size, transform)
    ablation = fine.accuracy
    norms = np.linalg.norm(outgoing.astype(np.float64), axis=0)
    with np.errstate(all="ignore"):
        worst = np.where(np.isnan(ablation), np.inf, ablation).min(1)
        drop = np.where(np.isinf(worst), np.nan, -worst)
        p_drop = -np.where(np.isnan(fine.probability), np.inf, fine.probability).min(1)
        p_drop = np.where(np.isinf(p_drop), np.nan, p_drop)
    support = np.bincount(np.asarray(val_labels, dtype=np.int64), minlength=n_classes).astype(np.float64)
    n_val = max(1, len(val_labels))  # overall accuracy change = Σ_k support_k · Δ[j, k] / N
    overall = -(np.nan_to_num(ablation) * support).sum(1) / n_val if len(val_labels) else np.full(len(bias), np.nan)
    units = np.arange(len(norms))
    if sort_by == "outgoing-norm":
        order = np.lexsort((units, -norms))
    elif sort_by == "ablation":
        order = np.lexsort((units, -np.nan_to_num(drop, nan=-np.inf), -np.nan_to_num(p_drop, nan=-np.inf)))
    else:
        order = units
    return [
        UnitCard(
            unit=int(j),
            incoming=incoming[j],
            outgoing=outgoing[:, j].copy(),
            bias=float(bias[j]),
            promotes=int(np.argmax(outgoing[:, j])),
            suppresses=int(np.argmin(outgoing[:, j])),
            top_images=top_i[j],
            top_activations=top_v[j],
            ablation=ablation[j],
            probability=fine.probability[j],
            logit=fine.logit[j],
            importance={"outgoing_norm": float(norms[j]), "ablation": float(drop[j]),
                        "ablation_overall": float(overall[j]), "probability_drop": float(p_drop[j])},
        )
        for j in order
    ]

