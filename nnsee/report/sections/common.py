"""What every section needs: the trained run, its data, standardized once, the shape of a section, tile helpers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from nnsee.data.imageset import Splits
from nnsee.data.lazy import LazyImages
from nnsee.models.capabilities import Capabilities, capabilities
from nnsee.render import bar_chart_svg, data_uri, image_tile, mosaic, weight_tile
from nnsee.render.bidi import isolated
from nnsee.train.evaluate import predict_logits
from nnsee.train.run import Run


@dataclass
class ReportInput:
    """A loaded run and its splits (in memory or streamed: :class:`~nnsee.data.lazy.LazyImages`). Sections read a
    split whole only batch by batch, standardizing each batch (``run.standardize``), and take the few images they
    show by index, so a streamed set is never decoded whole."""

    run: Run
    splits: Splits
    max_units: int = 256
    gallery: int = 16
    sort_units: str = "outgoing-norm"
    layers: list[str] | None = None  # the CNN section's stages (None: its own choice)
    top_from: Any = None  # an nnsee.analysis.Analysis of the training split: the CNN section's top-9 read from it
    layer_images: list[int] | None = None  # the layer-by-layer section's test images (None: its own choice)
    notes: list[str] = field(default_factory=list)

    @cached_property
    def class_names(self) -> list[str]:
        """The class names as every section shows them: isolated (:func:`nnsee.render.bidi.isolated`), so a name
        with a right-to-left override cannot reorder the text around it on the page."""
        return [isolated(name) for name in self.run.class_names]

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.run.input_shape or self.splits.shape)  # type: ignore[return-value]

    @cached_property
    def caps(self) -> Capabilities:
        """What the model offers the sections, read once from its modules."""
        return capabilities(self.run.model, self.shape)

    def inputs(self, images: np.ndarray | LazyImages, index: np.ndarray) -> np.ndarray:
        """The images at ``index`` as the model sees them (the run's standardization applied to those only; of a
        streamed set only those are read)."""
        return self.run.standardize(images[index])

    @cached_property
    def test_logits(self) -> np.ndarray:
        """The model's logits (N, K) for every test image, each chunk standardized (and, when streamed, decoded) as
        it is reached: neither a standardized nor a decoded copy of the whole test set is made."""
        return predict_logits(self.run.model, self.splits.test.images, transform=self.run.standardize)


@dataclass(frozen=True)
class Section:
    """One section of the report, declared once in :data:`nnsee.report.sections.SECTIONS`.

    ``context`` computes what its partial shows (None leaves the section out, link included); the page renders
    the partial ``sections/<name>.html.j2`` with the context as ``sections.<name>``. ``template`` is the partial's
    jinja source, kept in the section's module (its ``TEMPLATE`` string).
    ``link`` is its navigation link's text (None: no link), ``anchor`` the id of its heading. ``files`` takes the
    files it writes beside the page out of its context (name → bytes). A ``paged`` section's context holds
    ``pages``, lists of items: page ``i`` (``index.html``, ``units-2.html``, ...) shows its ``i``-th list as
    ``cards``, and its partial alone is rendered on every page (at most one section is paged).
    """

    name: str
    context: Callable[[ReportInput], dict[str, Any] | None]
    link: str | None = None
    anchor: str = ""
    template: str = ""
    files: Callable[[dict[str, Any]], dict[str, bytes]] | None = None
    paged: bool = False

    def __post_init__(self) -> None:
        if not self.anchor:
            object.__setattr__(self, "anchor", self.name)

    @property
    def partial(self) -> str:
        """The partial's template name."""
        return f"sections/{self.name}.html.j2"


def head(images: np.ndarray | LazyImages, n: int) -> np.ndarray | LazyImages:
    """The first ``n`` images: a view of an array, a lazy subset of a streamed set (nothing read now)."""
    return images.take(np.arange(min(n, len(images)))) if isinstance(images, LazyImages) else images[:n]


def upscale_for(shape: tuple[int, ...], target: int = 84) -> int:
    """An integer zoom that shows an (C, H, W) image about ``target`` pixels wide."""
    return max(1, round(target / max(shape[-1], 1)))


def weight_uri(w: np.ndarray, scale: float, upscale: int) -> str:
    return data_uri(weight_tile(w, scale, upscale))


def image_uri(x: np.ndarray, upscale: int) -> str:
    return data_uri(image_tile(np.clip(x, 0, 1), upscale))


def images_grid_uri(images: np.ndarray, ncols: int, upscale: int) -> str:
    """Several (C, H, W) images in [0, 1] as one PNG grid, so a card needs one image, not nine."""
    return data_uri(mosaic(images, ncols=ncols, upscale=upscale, pad=1))


MAX_CLASSES = 30  # a per-class view shows every class up to this many; above, a bounded selection, said on the page
MAX_BARS = 10  # a chart of one value per class shows this many bars once there are more than MAX_CLASSES classes


MAX_SNAPSHOTS = 12  # an evolution view shows at most this many snapshot epochs, evenly spaced, first and last included


def spread(epochs: list[int], most: int = MAX_SNAPSHOTS) -> list[int]:
    """At most ``most`` of ``epochs``: those at positions ``round(i (n - 1) / (most - 1))``, i = 0 .. most - 1 (evenly
    spaced, the first and the last always among them; distinct, since the step exceeds 1 when n > most)."""
    if len(epochs) <= most:
        return list(epochs)
    return [epochs[int(i)] for i in np.round(np.linspace(0, len(epochs) - 1, most))]


def snapshots_note(shown: list[int], total: int) -> str | None:
    """What an evolution view leaves out, or None when it shows every snapshot."""
    return dropped_note(f"{len(shown)} evenly spaced snapshots (epochs {', '.join(map(str, shown))})", len(shown),
                        total)


def dropped_note(what: str, shown: int, total: int, of: str = "") -> str | None:
    """``"showing WHAT of TOTAL[OF]"`` when a view leaves items out (``shown < total``), else None."""
    return f"showing {what} of {total:,}{of}" if shown < total else None


def class_bars_svg(values: np.ndarray, labels: list[str], title: str, *, keep: tuple[int, ...] = (),
                   signed: bool = True, width: int = 260, highlight: bool = True) -> str:
    """A bar chart of one value per class: every class up to :data:`MAX_CLASSES`; above, the :data:`MAX_BARS`
    largest (by magnitude when ``signed``), the classes in ``keep`` always among them, in class order, the title
    saying how many of how many. ``highlight`` makes ``keep[0]`` bold."""
    v = np.asarray(values, dtype=np.float64).ravel()
    chosen = list(range(v.size))
    if v.size > MAX_CLASSES:
        size = np.nan_to_num(np.abs(v) if signed else v, nan=-np.inf)
        order = [int(i) for i in np.argsort(-size, kind="stable")]
        chosen = sorted(list(dict.fromkeys([*keep, *order]))[: max(MAX_BARS, len(keep))])
        title = f"{title} ({len(chosen)} {'largest |values|' if signed else 'largest'} of {v.size:,})"
    bar = chosen.index(keep[0]) if keep and highlight else None
    return bar_chart_svg(v[chosen], [labels[i] for i in chosen], width=width, highlight=bar, title=title)
