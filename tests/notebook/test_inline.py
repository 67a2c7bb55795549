"""Inline views (nnsee.show and the IPython formatters): the HTML holds the render layer's very images and the
numbers of the object it shows, and every class name comes out escaped."""

from __future__ import annotations

import base64
import io
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from offline_browser import needs_chromium, offline_page
from PIL import Image
from tiny import HOSTILE_NAMES, make_splits

import nnsee
from nnsee.errors import NnseeError
from nnsee.methods import class_templates, unit_cards
from nnsee.methods.attribution.registry import METHODS
from nnsee.methods.one_image import explain_image
from nnsee.models import build_model
from nnsee.notebook.registry import RENDERERS, register_formatters, renderer_for
from nnsee.render import image_tile, mosaic, symmetric_scale, weight_tile
from nnsee.studies.overfit import OverfitRun, OverfitStudy
from nnsee.studies.standardization import ModeResult, StandardizationStudy
from nnsee.train import TrainConfig, fit, load_run

SHAPE = (1, 8, 8)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A softmax regression and an MLP (5 units) on 8x8 images of 3 classes with hostile names."""
    root = tmp_path_factory.mktemp("inline")
    splits = make_splits(n_per_class=20, n_classes=3, shape=SHAPE)
    for part in (splits.train, splits.val, splits.test):
        part.class_names[:] = HOSTILE_NAMES
    out = {"splits": splits}
    for name, options in {"softmax": {}, "mlp": {"hidden": [5]}}.items():
        torch.manual_seed(0)
        model = build_model(name, SHAPE, 3, **options)
        out[f"{name}-fit"] = fit(model, splits, TrainConfig(epochs=3, batch_size=20, lr=0.05), root / name,
                                 progress=False)
        out[name] = load_run(root / name)
    return out


def pngs(html: str, alt: str) -> list[np.ndarray]:
    """The pixels of every data: URI PNG whose alt text starts with ``alt``, in page order."""
    found = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)" alt="([^"]*)"', html)
    return [np.asarray(Image.open(io.BytesIO(base64.b64decode(data)))) for data, a in found if a.startswith(alt)]


def flat(html: str) -> str:
    """``html`` without the bidi isolates (U+2068, U+2069) every name and text from data is wrapped in."""
    return html.replace("\u2068", "").replace("\u2069", "")


def same_image(a: np.ndarray, tile: Image.Image) -> bool:
    return a.shape == np.asarray(tile).shape and np.array_equal(a, np.asarray(tile))


def escaped(html: str) -> None:
    """No hostile name raw in the HTML; each appears escaped."""
    assert "<script>" not in html and "<b>bold</b>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "amp &amp; &lt;b&gt;bold&lt;/b&gt;" in html
    assert "quote &quot; and &#x27;apostrophe&#x27;" in html


def test_templates_are_the_render_layers_tiles_on_one_shared_scale(runs: dict) -> None:
    run = runs["softmax"]
    w = class_templates(run.model)
    html = nnsee.show(w, class_names=run.class_names).html
    tiles = pngs(html, "weights of class")
    assert len(tiles) == 3
    scale = symmetric_scale(w)
    upscale = round(56 / 8)
    for k in range(3):
        assert same_image(tiles[k], weight_tile(w[k], scale, upscale)), k
    assert f"shared scale ±{scale:.3g}" in html
    escaped(html)
    own = nnsee.show(w, class_names=run.class_names, shared=False).html
    assert same_image(pngs(own, "weights of class")[2], weight_tile(w[2], symmetric_scale(w[2]), upscale))


def test_run_shows_data_model_accuracies_and_curves(runs: dict) -> None:
    run = runs["softmax"]
    html = flat(nnsee.show(run).html)
    test_acc, val_acc = run.metrics["test"]["accuracy"], run.metrics["val"]["accuracy"]
    assert f'data-metric="test-accuracy">{100 * test_acc:.1f}%<' in html
    assert f'data-metric="val-accuracy">{100 * val_acc:.1f}%<' in html
    assert "softmax (195 parameters)" in html  # 3 x 64 weights + 3 biases
    assert re.search(r">data</td><td[^>]*>tiny<", html)  # in-memory splits: the spec, no counts
    assert html.count("<polyline") == 4  # loss and accuracy, train and validation
    assert re.search(r">epochs</td><td[^>]*>3<", html)
    escaped(html)
    result = flat(nnsee.show(runs["softmax-fit"]).html)  # what fit returned: the same numbers, no data spec
    assert f'data-metric="test-accuracy">{100 * test_acc:.1f}%<' in result
    assert "SoftmaxRegression (195 parameters)" in result and re.search(r">status</td><td[^>]*>completed<", result)
    assert result.count("<polyline") == 4


def test_explanation_holds_maps_probabilities_and_the_dot_products_sums(runs: dict) -> None:
    run, splits = runs["softmax"], runs["splits"]
    image = splits.test.images[0]
    e = explain_image(run.model, run.standardize(image), input_shape=SHAPE)
    html = nnsee.show(e, class_names=run.class_names, image=image).html
    k = e.predicted
    maps = np.stack([p.map for p in e.panels]).astype(np.float64)
    scale = symmetric_scale(maps)
    upscale = 7
    tiles = pngs(html, "contributions map")
    assert len(tiles) == 3
    for c in range(3):
        assert same_image(tiles[c], weight_tile(maps[c], scale, upscale)), c
    assert same_image(pngs(html, "the input image")[0], image_tile(image, upscale))
    assert f'data-metric="probability">{100 * e.probabilities[k]:.1f}%<' in html
    assert f'data-metric="bias">{e.dot.bias[k]:.4g}<' in html
    assert f"{e.logits[k]:.4g}" in html
    for c in range(3):  # the probability chart prints every class's value
        assert f">{e.probabilities[c]:.3g}</text>" in html
    escaped(html)


def test_an_mlp_explanation_captions_its_units(runs: dict) -> None:
    run, splits = runs["mlp"], runs["splits"]
    e = explain_image(run.model, run.standardize(splits.test.images[1]), input_shape=SHAPE)
    html = nnsee.show(e, class_names=run.class_names).html
    for p in e.panels:
        assert f"unit {p.index}: h = {p.value:.3g}" in html
    assert f'data-metric="bias">{e.dot.out_bias[e.predicted]:.4g}<' in html
    escaped(html)


def test_attribution_maps_share_a_scale_and_print_the_methods_numbers(runs: dict) -> None:
    run, splits = runs["softmax"], runs["splits"]
    x = run.standardize(splits.test.images[:2])
    a = METHODS["integrated-gradients"].attribute(run.model, x, np.array([0, 1]), "logit")
    html = nnsee.show(a, images=splits.test.images[:2]).html
    summed = a.maps.astype(np.float64).sum(axis=1, keepdims=True)
    scale = symmetric_scale(summed)
    tiles = pngs(html, "integrated-gradients")
    assert len(tiles) == 2
    for i in range(2):
        assert same_image(tiles[i], weight_tile(summed[i], scale, 7)), i
    assert len(pngs(html, "the input image")) == 2
    assert "convergence_delta" in html


def test_unit_cards_show_weights_bias_votes_and_top_images(runs: dict) -> None:
    run, splits = runs["mlp"], runs["splits"]
    cards = unit_cards(run.model, splits.train.images, splits.val.images, splits.val.labels, run.class_names,
                       transform=run.standardize)
    html = nnsee.show(cards, class_names=run.class_names, images=splits.train.images).html
    scale = symmetric_scale(np.stack([c.incoming for c in cards]))
    weights = pngs(html, "incoming weights of unit")
    tops = pngs(html, "the images it responds to most")
    assert len(weights) == len(tops) == 5
    for c, w, top in zip(cards, weights, tops, strict=True):
        assert same_image(w, weight_tile(c.incoming, scale, round(84 / 8)))
        assert same_image(top, mosaic(splits.train.images[c.top_images], ncols=3, upscale=round(28 / 8)))
        assert f'data-unit="{c.unit}"' in html
        assert f'data-metric="bias">{c.bias:.4g}<' in html
    first = html.index(f'data-unit="{cards[0].unit}"')
    assert html.index(f'data-unit="{cards[1].unit}"') > first  # in the cards' order
    escaped(html)
    one = nnsee.show(cards[0], class_names=run.class_names).html
    assert len(pngs(one, "incoming weights of unit")) == 1


def test_studies_show_their_numbers_and_weight_images() -> None:
    rng = np.random.default_rng(0)
    templates = rng.normal(size=(3, 1, 4, 4))
    study = StandardizationStudy([ModeResult("image", templates, 0.75, 0.625, np.array([4.0, 4.0])),
                                  ModeResult("none", templates * 3, 0.5, 0.375, np.array([1.0, 3.0]))],
                                 class_names=list(HOSTILE_NAMES))
    html = nnsee.show(study).html
    assert 'data-metric="test-accuracy">62.5%<' in html and 'data-metric="val-accuracy">50.0%<' in html
    tiles = pngs(html, "none template of class")
    assert len(tiles) == 3
    assert same_image(tiles[1], weight_tile(templates[1] * 3, symmetric_scale(templates * 3), 10))
    escaped(html)
    history = {"epoch": [1, 2, 3], "train_loss": [1.0, 0.5, 0.2], "val_loss": [1.0, 0.8, 0.9]}
    weights = rng.normal(size=(10, 1, 4, 4))
    run = OverfitRun(5, 0.3, 15, history, {"high_frequency_share_mean": 0.4321}, 1.0, 0.8125, 0.75, 0.1875, weights)
    html = nnsee.show(OverfitStudy([run])).html
    assert "5-l2-0.3" in html and 'data-metric="val-accuracy">81.2%<' in html and "0.432" in html
    assert len(pngs(html, "5-l2-0.3 unit")) == 8  # the first 8 hidden units
    assert html.count("<polyline") == 2


def test_formatters_make_the_registrys_types_display_themselves(runs: dict) -> None:
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    try:
        assert register_formatters(shell)
        data, _ = shell.display_formatter.format(runs["softmax"])
        assert data["text/html"] == nnsee.show(runs["softmax"]).html
        e = explain_image(runs["softmax"].model, runs["softmax"].standardize(runs["splits"].test.images[0]))
        assert "contributions: predicted" in flat(shell.display_formatter.format(e)[0]["text/html"])
        assert "text/html" not in shell.display_formatter.format([1, 2])[0]  # no formatter claims plain lists
    finally:
        InteractiveShell.clear_instance()


def test_every_registered_type_exists_and_has_a_renderer() -> None:
    import importlib

    for (module, name), target in RENDERERS.items():
        assert hasattr(importlib.import_module(module), name), (module, name)
        mod, function = target.split(":")
        assert callable(getattr(importlib.import_module(mod), function)), target
    assert renderer_for(np.zeros(3)) is None


def test_show_refuses_what_it_cannot_draw_in_one_line() -> None:
    with pytest.raises(NnseeError) as info:
        nnsee.show(42)
    assert "\n" not in str(info.value) and "cannot draw a int" in str(info.value)
    with pytest.raises(NnseeError, match="got 2 class names for 3 classes"):
        nnsee.show(np.zeros((3, 1, 4, 4)), class_names=["a", "b"])
    with pytest.raises(NnseeError, match=r"\(K, C, H, W\)"):
        nnsee.show(np.zeros((3, 2, 4, 4)))


def test_importing_nnsee_notebook_and_show_leaves_torch_unloaded() -> None:
    code = ("import sys, nnsee, nnsee.notebook; nnsee.show; "
            "assert 'torch' not in sys.modules, 'torch imported'; print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         cwd=Path(__file__).parent)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


def test_the_dot_products_own_results_display_like_the_explanation(runs: dict) -> None:
    from nnsee.methods import explain

    for kind in ("softmax", "mlp"):
        run, image = runs[kind], runs["splits"].test.images[2]
        d = explain(run.model, run.standardize(image), SHAPE)
        e = explain_image(run.model, run.standardize(image), input_shape=SHAPE)
        assert nnsee.show(d, class_names=run.class_names).html == nnsee.show(e, class_names=run.class_names).html


SHOTS = Path("/tmp/shots/h4")


@needs_chromium
def test_every_view_renders_offline_in_chromium_with_names_as_text(runs: dict, tmp_path: Path) -> None:
    """All views on one page, opened from disk with every request but file: and data: aborted: every image loads,
    no script runs (no dialog, no page error), and the hostile names read as text."""
    soft, mlp, splits = runs["softmax"], runs["mlp"], runs["splits"]
    x = soft.standardize(splits.test.images[:2])
    names = soft.class_names
    views = [nnsee.show(soft), nnsee.show(class_templates(soft.model), class_names=names),
             nnsee.show(explain_image(soft.model, x[0]), class_names=names, image=splits.test.images[0]),
             nnsee.show(explain_image(mlp.model, mlp.standardize(splits.test.images[0])), class_names=names),
             nnsee.show(METHODS["saliency"].attribute(soft.model, x, np.array([0, 1]), "logit"),
                        images=splits.test.images[:2]),
             nnsee.show(unit_cards(mlp.model, splits.train.images, splits.val.images, splits.val.labels, names,
                                   transform=mlp.standardize), class_names=names, images=splits.train.images)]
    page_file = tmp_path / "views.html"
    page_file.write_text("<!doctype html><meta charset='utf-8'><body>" + "".join(v.html for v in views),
                         encoding="utf-8")
    dialogs: list[str] = []
    with offline_page(1100, 900, console=False) as seen:
        page = seen.page
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.goto(page_file.as_uri())
        page.wait_for_load_state("load")
        images = page.eval_on_selector_all("img", "els => els.map(e => e.complete && e.naturalWidth > 0)")
        body = page.inner_text("body")
        boxes = page.locator(".nnsee-view").count()
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / "inline-views.png"), full_page=True)
    assert seen.blocked == [] and seen.errors == [] and dialogs == []
    assert len(images) > 25 and all(images)
    for name in HOSTILE_NAMES:
        assert name in body.replace("\u2068", "").replace("\u2069", "")
    assert boxes == len(views)
