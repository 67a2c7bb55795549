"""The CNN section of a deep net, stage by stage (issue 12): receptive fields through residual adds, the stages
chosen by default or by ``layers=``, one streaming top-9 pass for every stage, and the randomization check's
cheaper settings at large inputs (the same maps, one image at a time)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from zoo import resnet18, vgg

from nnsee.errors import MethodError
from nnsee.methods.dataset_views.projections import projection_batch_size, top9_projections
from nnsee.methods.dataset_views.receptive_field import field_of, probed_field, receptive_field
from nnsee.methods.dataset_views.top_images import top_images_per_layer
from nnsee.models import build_model
from nnsee.report.sections.cnn_section import probe, stage_layers

# ResNet-18's theoretical receptive fields written out by hand, per axis: the 7x7/2 stem (pad 3): size 7, jump 2,
# offset -3; the 3x3/2 max-pool (pad 1): 7 + 2*2 = 11, jump 4, offset -3 - 2 = -5; each 3x3 conv (pad 1) adds
# 2*jump to the size and takes jump from the offset; the first conv of layer2..4 then doubles the jump. The 1x1/2
# shortcuts see less than the 3x3 path beside them, so the union is the 3x3 path.
RESNET18_FIELDS = {  # layer: (size, stride, offset)
    "conv1": (7, 2, -3),
    "layer1": (11 + 4 * 2 * 4, 4, -5 - 4 * 4),  # 43, -21
    "layer2": (43 + 2 * 4 + 3 * 2 * 8, 8, -21 - 4 - 3 * 8),  # 99, -49
    "layer3": (99 + 2 * 8 + 3 * 2 * 16, 16, -49 - 8 - 3 * 16),  # 211, -105
}


def test_resnet18_fields_through_the_residual_adds_are_the_published_ones() -> None:
    model = resnet18(n_classes=3, width=4)
    for layer, (size, stride, offset) in RESNET18_FIELDS.items():
        rf = probed_field(model, layer, (3, 224, 224))
        assert rf is not None, layer
        assert (rf.size, rf.stride, rf.offset) == ((size, size), (stride, stride), (offset, offset)), layer
    assert tuple(RESNET18_FIELDS[f"layer{i}"][0] for i in (1, 2, 3)) == (43, 99, 211)
    assert probed_field(model, "layer4", (3, 224, 224)) is None  # 435 px: the whole image
    rf, how = field_of(model, "layer4", (3, 224, 224))
    assert rf.size == (224, 224) and "covers the whole 224x224 image" in how
    rf, how = field_of(model, "layer1", (3, 224, 224))
    assert rf.size == (43, 43) and "union over every branch" in how


def test_probed_fields_equal_the_chain_formula_on_a_plain_chain() -> None:
    """VGG is a chain: the probe (gradient support of a monotone copy) and the layer-by-layer formula agree, the
    max-pools included (read as average pools by the probe)."""
    model = vgg(width=2, config="11")
    for layer in ("features.0", "features.4", "features.8", "features.11", "features.15"):
        assert probed_field(model, layer, (3, 48, 48)) == receptive_field(model, layer, (3, 48, 48)), layer


def test_default_stages_are_the_last_conv_of_each_resolution_lifted_to_its_block() -> None:
    net = resnet18(n_classes=3, width=4)
    assert stage_layers(net, probe(net, (3, 64, 64))) == ["conv1", "layer1", "layer2", "layer3", "layer4"]
    chain = vgg(width=2, config="11")  # conv 0 | M | 4 | M | 8, 11 | M | 15, 18 | M | 22, 25 | M (BN: 3 per conv)
    convs = [n for n, m in chain.named_modules() if isinstance(m, nn.Conv2d)]
    assert stage_layers(chain, probe(chain, (3, 64, 64))) == [convs[i] for i in (0, 1, 3, 5, 7)]
    cnn = build_model("cnn", (1, 28, 28), 10, channels=[4, 6], kernel=3)
    assert stage_layers(cnn, probe(cnn, (1, 28, 28))) == ["conv1", "conv2"]


def test_one_pass_top9_of_every_stage_equals_each_layers_own_maxima() -> None:
    """Against every activation kept in full (numpy argmax over images and positions), with the in-place ReLUs
    of a VGG after each conv (the conv's own output, not the ReLU's, is ranked)."""
    model = vgg(width=2, config="11")
    x = np.random.default_rng(0).normal(size=(23, 3, 32, 32)).astype(np.float32)
    layers = ["features.0", "features.4", "features.15"]
    tops = top_images_per_layer(model, x, layers, k=3, batch_size=5)
    for layer in layers:
        box: dict[str, torch.Tensor] = {}
        handle = dict(model.named_modules())[layer].register_forward_hook(
            lambda _m, _i, out, box=box: box.__setitem__("a", out.detach().clone()))
        with torch.no_grad():
            model(torch.from_numpy(x))
        handle.remove()
        a = box["a"].numpy()
        best = a.reshape(*a.shape[:2], -1).max(-1)  # (N, F)
        order = np.argsort(-best, axis=0, kind="stable")[:3].T  # (F, 3)
        np.testing.assert_array_equal(tops[layer].image_index, order, err_msg=layer)
        np.testing.assert_allclose(tops[layer].values, np.take_along_axis(best.T, order, 1), rtol=1e-6)


def test_projection_batches_fit_their_budget_and_give_the_same_projections() -> None:
    big = resnet18(n_classes=3, width=64)
    per_batch = projection_batch_size(big, torch.zeros(1, 3, 224, 224))
    assert 2 <= per_batch <= 16, per_batch  # was 256 images a batch: ~7.7 GB of leaf outputs at 224 px
    model = resnet18(n_classes=3, width=4)
    x = np.random.default_rng(1).random((10, 3, 48, 48)).astype(np.float32)
    top = top_images_per_layer(model, x, ["layer1"], k=2)["layer1"]
    auto, single = top9_projections(model, x, top), top9_projections(model, x, top, batch_size=1)
    np.testing.assert_allclose(auto.projections, single.projections, rtol=1e-5, atol=1e-7)
    assert auto.rf.size == (43, 43) and auto.image_crops.shape[-2:] == (43, 43)


def test_randomization_check_one_image_at_a_time_gives_the_same_scores() -> None:
    from nnsee.methods.attribution.integrated_gradients import integrated_gradients
    from nnsee.methods.sanity import map_functions, randomization_check

    model = resnet18(n_classes=3, width=4)
    x = np.random.default_rng(2).normal(size=(2, 3, 32, 32)).astype(np.float32)
    target = np.array([0, 2])
    names = ["saliency", "integrated-gradients"]
    options = {"integrated-gradients": {"steps": 2}}
    batched = randomization_check(model, x, target, methods=names, options=options)
    alone = randomization_check(model, x, target, methods=names, options=options, per_image=True)
    for name in names:
        for score in ("spearman", "spearman_signed", "ssim"):
            assert alone[name][score] == pytest.approx(batched[name][score], abs=1e-5, nan_ok=True), (name, score)
    ig = map_functions(model, ["integrated-gradients"], options)["integrated-gradients"](model, x, target)
    np.testing.assert_allclose(ig, integrated_gradients(model, x, target, steps=2).attributions, rtol=1e-5,
                               atol=1e-7)


def test_chosen_layers_must_be_feature_maps() -> None:
    from nnsee.report.sections.cnn_section import chosen_stages
    from nnsee.report.sections.common import ReportInput

    class Fake:
        model = resnet18(n_classes=3, width=4)

    seen = probe(Fake.model, (3, 32, 32))
    inp = ReportInput.__new__(ReportInput)
    inp.run = Fake
    for names, message in ((["layer9"], "has no layer 'layer9'"), (["fc"], "'fc' gives 3, not feature maps"),
                           ([], "names no layer")):
        inp.layers = names
        with pytest.raises(MethodError, match=message):
            chosen_stages(inp, seen)
    inp.layers = ["layer2", "layer4.0.conv1", "layer2"]
    assert chosen_stages(inp, seen) == ["layer2", "layer4.0.conv1"]


@pytest.fixture(scope="module")
def resnet_reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Reports of an adopted ResNet-18 shape (width 4) on 64-px photos: the default stages, and layers=[...].
    Occlusion steps 8 px (the window) and the randomization check is left out here (both are tested on their own)."""
    from photos import photo_folder

    import nnsee
    from nnsee.report import build_report
    from nnsee.report.sections import cnn_section

    root = tmp_path_factory.mktemp("resnet")
    zoo_file = Path(__file__).resolve().parents[1] / "zoo.py"
    args = {"n_classes": 3, "width": 4}
    run = nnsee.adopt(resnet18(**args), input_shape=(3, 64, 64), normalize="imagenet", out=root / "run",
                      code=f"{zoo_file}:resnet18", code_args=args, data=str(photo_folder(root / "photos", 6, 72)))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(cnn_section, "occlusion_map_stride", lambda shape: 8)
        patch.setattr(cnn_section, "_sanity", lambda inp, large: None)
        return {"default": build_report(run, root / "default"),
                "chosen": build_report(run, root / "chosen", layers=["layer1", "layer3"])}


@pytest.fixture(scope="module")
def resnet_pages(resnet_reports: dict[str, Path]) -> dict[str, str]:
    return {name: index.read_text(encoding="utf-8") for name, index in resnet_reports.items()}


def _png_sizes(html: str, alt: str) -> list[tuple[int, int]]:
    import base64
    import io
    import re

    from PIL import Image

    found = re.findall(r'<img src="data:image/png;base64,([^"]+)" alt="' + alt, html)
    return [Image.open(io.BytesIO(base64.b64decode(b))).size for b in found]


def test_every_stage_gets_its_top9_and_grad_cam(resnet_pages: dict[str, str]) -> None:
    html = resnet_pages["default"]
    shown = len(_png_sizes(html, "grad-cam at conv1\""))
    assert shown >= 2  # the test images of the occlusion table
    for layer, maps in (("conv1", 4), ("layer1", 4), ("layer2", 8), ("layer3", 8), ("layer4", 8)):
        assert f'Top 9 images per feature map of <span class="math">{layer}</span>' in html, layer
        assert len(_png_sizes(html, f"top 9 images of map \\d+ of {layer}\"")) == maps, layer
        assert len(_png_sizes(html, f"projections of map \\d+ of {layer}\"")) == maps, layer
        assert len(_png_sizes(html, f"grad-cam at {layer}\"")) == shown, layer
    assert "Receptive field: 7x7 px, from the chain of layers" in html
    assert "Receptive field: 43x43 px, the union over every branch (residual adds included)" in html
    assert "the receptive field of layer2 (union over the residual branches) covers the whole 64x64 image" in html
    assert "Not shown: Feature evolution during training" in html  # an adopted run has no snapshots: said why


def test_chosen_layers_are_the_stages_and_crops_follow_their_fields(resnet_pages: dict[str, str]) -> None:
    html = resnet_pages["chosen"]
    assert "Stages: layer1, layer3 (chosen with --layers)" in html
    assert "of <span class=\"math\">conv1</span>" not in html and "grad-cam at layer2" not in html
    (w1, h1), *_ = _png_sizes(html, "top 9 images of map \\d+ of layer1\"")
    (w3, h3), *_ = _png_sizes(html, "top 9 images of map \\d+ of layer3\"")
    assert 3 * 43 <= w1 < 3 * 43 + 8 and 3 * 43 <= h1 < 3 * 43 + 8  # 43 px crops: layer1's field
    assert 3 * 64 <= w3 < 3 * 64 + 8  # whole 64 px images: layer3's field covers the image


CHROMIUM = Path("/usr/bin/chromium")


@pytest.mark.skipif(not CHROMIUM.exists(), reason="apt-get install chromium (done by .ci/run)")
def test_the_resnet_report_opens_in_chromium_with_every_stage_drawn(resnet_reports: dict[str, Path]) -> None:
    """Offline (every request but file: and data: aborted): every image decodes, no page error; the CNN section's
    screenshot is kept in test-artifacts/ to look at."""
    sync_api = pytest.importorskip("playwright.sync_api")
    args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync"]
    artifacts = Path(__file__).resolve().parents[2] / "test-artifacts"
    blocked: list[str] = []
    errors: list[str] = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=args)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.route("**/*", lambda r: r.continue_() if r.request.url.startswith(("file:", "data:"))
                       else (blocked.append(r.request.url), r.abort()))
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(resnet_reports["default"].as_uri())
            page.wait_for_load_state("load")
            loaded = page.eval_on_selector_all("#cnn ~ * img", "els => els.map(e => e.complete && e.naturalWidth > 0)")
            heights = page.eval_on_selector_all("h4", "els => els.map(e => e.getBoundingClientRect().height)")
            artifacts.mkdir(exist_ok=True)
            top = page.evaluate("document.getElementById('cnn').getBoundingClientRect().top + window.scrollY")
            page.screenshot(path=str(artifacts / "report-resnet-cnn.png"), full_page=True,
                            clip={"x": 0, "y": top, "width": 1400, "height": 2400})
        finally:
            browser.close()
    assert blocked == [] and errors == []
    assert len(loaded) > 90 and all(loaded)  # 5 stages x (4 to 8 maps) x 2, Grad-CAM, occlusion, filters
    assert len(heights) == 5 and all(h > 0 for h in heights)  # one heading a stage, laid out


def test_report_refuses_a_wrong_layer_before_any_section(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`nnsee report RUN --layers ...`: one line, exit 1, nothing written, and no section computed first (the
    sections are emptied here: only the check before them can refuse)."""
    from click.testing import CliRunner
    from photos import photo_folder

    import nnsee
    from nnsee.cli import main
    from nnsee.report import sections

    zoo_file = Path(__file__).resolve().parents[1] / "zoo.py"
    args = {"n_classes": 3, "width": 4}
    nnsee.adopt(resnet18(**args), input_shape=(3, 32, 32), normalize="imagenet", out=tmp_path / "run",
                code=f"{zoo_file}:resnet18", code_args=args, data=str(photo_folder(tmp_path / "photos", 3, 40)))
    monkeypatch.setattr(sections, "SECTIONS", [])
    for layers, said in (("layer1,layer9", "has no layer 'layer9'"), ("fc", "'fc' gives 3, not feature maps")):
        result = CliRunner().invoke(main, ["report", str(tmp_path / "run"), "--out", str(tmp_path / "r"),
                                           "--layers", layers])
        errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
        assert result.exit_code == 1 and len(errors) == 1 and said in errors[0], result.stderr
        assert "Traceback" not in result.stderr and not (tmp_path / "r").exists()
