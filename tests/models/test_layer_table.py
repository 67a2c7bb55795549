"""`nnsee layers RUN` and its one library function: output shapes against ResNet-18's published table at 224 px,
receptive fields against hand-computed values for a plain CNN, and the names every layer option takes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from nnsee.errors import MethodError
from nnsee.models.layer_table import layer_table
from tests.zoo import resnet18

#: ResNet-18 at 3x224x224 (He et al. 2016, Table 1; torchvision's names), worked out by hand: the 7x7/2 stem halves
#: 224 to 112, the 3x3/2 max-pool to 56, layer2..4 halve again (28, 14, 7), the pool to 1x1, fc to 1000 classes.
RESNET18_224 = {
    "conv1": (64, 112, 112), "bn1": (64, 112, 112), "relu": (64, 112, 112), "maxpool": (64, 56, 56),
    "layer1": (64, 56, 56), "layer1.0.conv1": (64, 56, 56), "layer1.1": (64, 56, 56),
    "layer2": (128, 28, 28), "layer2.0.conv1": (128, 28, 28), "layer2.0.downsample.0": (128, 28, 28),
    "layer3": (256, 14, 14), "layer3.1.conv2": (256, 14, 14),
    "layer4": (512, 7, 7), "layer4.0.downsample": (512, 7, 7), "layer4.1.relu2": (512, 7, 7),
    "avgpool": (512, 1, 1), "fc": (1000,),
}


def plain_cnn() -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(8, 8, 5, stride=2, padding=2), nn.BatchNorm2d(8), nn.ReLU(),
                         nn.Conv2d(8, 8, 3, padding=2, dilation=2), nn.AvgPool2d(3, stride=2),
                         nn.Flatten(), nn.Linear(72, 10))


#: The plain CNN at 3x32x32 by hand (size += d(k-1)*jump, jump *= s, from size 1, jump 1): shape, field, stride.
PLAIN_32 = [
    ("0", "Conv2d", (8, 32, 32), "3x3", "1"),        # 1 + 2
    ("1", "ReLU", (8, 32, 32), "3x3", "1"),
    ("2", "MaxPool2d", (8, 16, 16), "4x4", "2"),     # 3 + 1
    ("3", "Conv2d", (8, 8, 8), "12x12", "4"),        # 4 + 4*2
    ("4", "BatchNorm2d", (8, 8, 8), "12x12", "4"),
    ("5", "ReLU", (8, 8, 8), "12x12", "4"),
    ("6", "Conv2d", (8, 8, 8), "28x28", "4"),        # 12 + 2*2*4 (dilation 2)
    ("7", "AvgPool2d", (8, 3, 3), "36x36", "8"),     # 28 + 2*4
    ("8", "Flatten", (72,), "whole image", "-"),
    ("9", "Linear", (10,), "whole image", "-"),
]


def test_resnet18_output_shapes_at_224() -> None:
    model = resnet18()
    rows = {r.name: r for r in layer_table(model, (3, 224, 224))}
    assert {name: rows[name].output_shape for name in RESNET18_224} == RESNET18_224
    assert list(rows) == [n for n, _ in model.named_modules() if n]  # every named layer, in order
    assert rows["layer3.1.conv2"].type == "Conv2d" and rows["layer4"].type == "Sequential"
    assert rows["conv1"].weights == 64 * 3 * 7 * 7 and rows["fc"].weights == 512 * 1000 + 1000
    assert sum(r.weights for r in rows.values() if "." not in r.name) == 11_689_512  # ResNet-18's count
    # the stem is a chain (7x7/2, then the 3x3/2 pool: 7 + 2*2 = 11, stride 4); after a residual add there is none
    assert (rows["conv1"].field, rows["conv1"].stride) == ("7x7", "2")
    assert (rows["maxpool"].field, rows["maxpool"].stride) == ("11x11", "4")
    assert (rows["layer1.0.conv1"].field, rows["layer1.0.conv2"].field) == ("19x19", "27x27")
    assert (rows["layer2.0.conv1"].field, rows["layer2.0.conv1"].stride) == ("-", "-")
    assert (rows["fc"].field, rows["fc"].stride) == ("whole image", "-")


def test_plain_cnn_receptive_fields_by_hand() -> None:
    model = plain_cnn().train()
    got = [(r.name, r.type, r.output_shape, r.field, r.stride) for r in layer_table(model, (3, 32, 32))]
    assert got == PLAIN_32
    assert all(m.training for m in model.modules())  # flags left as they were


def test_plain_cnn_field_is_the_gradient_support() -> None:
    """Independent of the arithmetic: the input pixels a centre unit of layer 7 depends on (its gradient's support,
    weights all positive so nothing cancels) span the 36 px field, clipped by the image."""
    model = plain_cnn().eval()
    with torch.no_grad():
        for p in model.parameters():
            p.abs_()
    x = torch.rand(1, 3, 64, 64, requires_grad=True)
    out = model[:8](x)
    out[0, 0, 3, 3].backward()
    rows = x.grad[0].abs().sum((0, 2)).nonzero().flatten()
    assert int(rows.max() - rows.min() + 1) == 36


def test_exported_graph_layers_are_named_and_typed(tmp_path: Path) -> None:
    from nnsee.models import exported

    model = resnet18(n_classes=3, width=8)
    program = torch.export.export(model, (torch.zeros(2, 3, 32, 32),),
                                  dynamic_shapes=({0: torch.export.Dim("batch")},))
    rows = {r.name: r for r in layer_table(exported.module_of(program), (3, 32, 32))}
    direct = {r.name: r for r in layer_table(model, (3, 32, 32))}
    assert set(rows) == set(direct)
    assert all(rows[n].output_shape == direct[n].output_shape and rows[n].field == direct[n].field for n in rows)
    assert rows["layer3.1.conv2"].type == "Conv2d" and rows["relu"].type == "graph: aten.relu_"
    assert rows["layer1.0"].type == "graph"
    plain = plain_cnn().eval()  # every leaf a standard call (ReLUs aside): the same rows, fields included
    program = torch.export.export(plain, (torch.zeros(2, 3, 32, 32),), dynamic_shapes=({0: torch.export.Dim("b")},))
    got = [(r.name, r.type, r.output_shape, r.field, r.stride) for r in layer_table(exported.module_of(program),
                                                                                    (3, 32, 32))]
    assert got == [row if row[1] != "ReLU" else (*row[:1], "graph: aten.relu", *row[2:]) for row in PLAIN_32]


def test_cli_layers(tmp_path: Path) -> None:
    """On a run adopted from a torch.export program (it loads with no code): text and JSON, the same rows."""
    from nnsee import adopt
    from tests.adopt.user_code import cli

    program = torch.export.export(resnet18(n_classes=3, width=8), (torch.zeros(2, 3, 32, 32),),
                                  dynamic_shapes=({0: torch.export.Dim("batch")},))
    adopt(program, class_names=["a", "b", "c"], input_shape=(3, 32, 32), out=tmp_path / "r")
    code, stdout, stderr = cli("layers", tmp_path / "r", "--json")
    assert code == 0, stderr
    table = json.loads(stdout)
    assert table["input_shape"] == [3, 32, 32] and len(table["layers"]) == 75
    row = next(r for r in table["layers"] if r["name"] == "layer4.1.conv2")
    assert row == {"name": "layer4.1.conv2", "type": "Conv2d", "output_shape": [64, 1, 1], "calls": 1,
                   "weights": 64 * 64 * 9, "field": "-", "stride": "-"}
    code, stdout, stderr = cli("layers", tmp_path / "r")
    assert code == 0, stderr
    lines = stdout.splitlines()
    assert lines[0].endswith("input 3x32x32, 75 named layers") and lines[1].split() == [
        "layer", "type", "output", "field", "stride", "weights"]
    assert lines[2].split() == ["conv1", "Conv2d", "8x16x16", "7x7", "2", "1,176"]
    assert any(line.split()[:3] == ["layer3.1.conv2", "Conv2d", "32x2x2"] for line in lines)


def test_bad_layer_name_is_one_line_with_names_and_the_nearest() -> None:
    from nnsee.methods.activation_max import activation_maximization
    from nnsee.methods.attribution.grad_cam import grad_cam

    model = resnet18(n_classes=3, width=8)
    x = torch.zeros(1, 3, 32, 32)
    for call in (lambda: grad_cam(model, x, 0, layer="layer3.1.conv3"),
                 lambda: activation_maximization(model, ("layer3.1.conv3", 0), (3, 32, 32), steps=1)):
        with pytest.raises(MethodError) as info:
            call()
        message = str(info.value)
        assert "\n" not in message and "the model has no layer 'layer3.1.conv3'" in message
        assert "conv1, bn1, relu, maxpool, layer1" in message and "and 45 more" in message
        assert "did you mean 'layer3.1.conv2'" in message and "nnsee layers RUN" in message
    assert json.dumps(message)  # plain text


def test_cli_layers_probe_fills_the_fields_after_residual_adds(tmp_path: Path) -> None:
    """--probe: the fields of ResNet-18's blocks, worked out by hand (stem 7x7/2 -> 7, max-pool 3/2 -> 11 at jump 4,
    each 3x3 conv adds 2 jumps; the identity path adds nothing, so a block's union is its conv path): layer1.0 27 px
    and layer1 43 px at stride 4, layer2 99 px at 8, layer3 211 px at 16, layer4 (435 px) the whole 224 px image."""
    from nnsee import adopt
    from tests.adopt.user_code import cli

    adopt(resnet18(n_classes=3, width=4), class_names=["a", "b", "c"], input_shape=(3, 224, 224),
          out=tmp_path / "r", code="tests.zoo:resnet18", code_args={"n_classes": 3, "width": 4})
    code, stdout, stderr = cli("layers", tmp_path / "r", "--json", "--probe")
    assert code == 0, stderr
    fields = {r["name"]: (r["field"], r["stride"]) for r in json.loads(stdout)["layers"]}
    assert fields["conv1"] == ("7x7", "2") and fields["layer1.0.conv1"] == ("19x19", "4")  # chains, as before
    assert fields["layer1.0"] == ("27x27", "4") and fields["layer1"] == ("43x43", "4")
    assert fields["layer2"] == ("99x99", "8") and fields["layer3"] == ("211x211", "16")
    assert fields["layer4"] == ("whole image", "-") == fields["fc"]
