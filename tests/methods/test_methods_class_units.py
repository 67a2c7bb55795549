import numpy as np
import pytest
from methods.hand_models import MLP_W1, mlp_2x2, softmax_2x2

from nnsee.methods import ClassUnits, MethodError, class_units, class_view


def test_class_units_golden():
    # W_out = [[2, −1, 0], [−1, 2, 0.5]]: class 1's positive voters are unit 1 (2) then unit 2 (0.5)
    units, weights = class_units(mlp_2x2(), 1)
    assert units.tolist() == [1, 2] and weights.tolist() == [2, 0.5]
    units, weights = class_units(mlp_2x2(), 0, top=5)
    assert units.tolist() == [0] and weights.tolist() == [2]
    assert class_units(mlp_2x2(), 1, top=1)[0].tolist() == [1]


def test_class_view_bundles_images_and_effective_template():
    v = class_view(mlp_2x2(), 1)
    assert isinstance(v, ClassUnits) and v.class_index == 1
    np.testing.assert_array_equal(v.incoming.reshape(2, 4), MLP_W1[[1, 2]])
    np.testing.assert_allclose(v.effective_template.reshape(4), [-0.5, -1.5, 2.5, 1.5])


def test_class_units_errors():
    with pytest.raises(MethodError, match="class index must be in 0..1"):
        class_units(mlp_2x2(), 2)
    with pytest.raises(MethodError, match="use class_templates"):
        class_units(softmax_2x2(), 0)
