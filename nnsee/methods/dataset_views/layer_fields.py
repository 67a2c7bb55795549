"""Receptive fields for the rows of ``nnsee layers`` that no chain of layers defines (after a residual add): each
probed as the union over every branch (:func:`~nnsee.methods.dataset_views.receptive_field.field_of`), about 0.4 s a
layer of a ResNet-18 at 224 px on this CPU, so ``nnsee layers --probe`` asks for it."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from torch import nn

from nnsee.methods.dataset_views.receptive_field import field_of
from nnsee.models.layer_table import WHOLE, LayerRow


def probed_rows(model: nn.Module, rows: Sequence[LayerRow], input_shape: Sequence[int]) -> list[LayerRow]:
    """``rows`` with the field and stride of every feature-map layer shown as ``-`` probed through the branches
    (``"whole image"`` where the union covers the image, or where it cannot be found); other rows as they were."""
    out = []
    for row in rows:
        shape = row.output_shape
        if row.field == "-" and shape is not None and len(shape) == 3:
            rf, _ = field_of(model, row.name, input_shape)
            if rf.stride == (0, 0):  # receptive_field.whole_image
                row = dataclasses.replace(row, field=WHOLE, stride="-")
            else:
                (h, w), (jh, jw) = rf.size, rf.stride
                row = dataclasses.replace(row, field=f"{h}x{w}", stride=str(jh) if jh == jw else f"{jh}x{jw}")
        out.append(row)
    return out
