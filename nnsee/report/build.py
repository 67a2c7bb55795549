"""``build_report``: a static, self-contained HTML page of what a run learned (jinja2, autoescape on).

Every image is a data: URI and nothing is fetched, so the page opens from disk with no network. Class names and
all other text are escaped by jinja2; inline SVG charts escape their own text.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

import nnsee
from nnsee.data.imageset import Splits
from nnsee.render import save_png, write_atomic
from nnsee.report.sections.class_units_section import class_units_section
from nnsee.report.sections.cnn_section import cnn_section
from nnsee.report.sections.common import ReportInput
from nnsee.report.sections.evolution_section import evolution_section
from nnsee.report.sections.gallery import gallery_section
from nnsee.report.sections.overview import overview
from nnsee.report.sections.standardization_section import standardization_section
from nnsee.report.sections.templates_section import templates_section
from nnsee.report.sections.units import units_section

MAX_UNIT_PAGES = 16  # 16 pages of 256 cards: 4,096 units at most, so a report stays bounded in size


def _environment() -> Environment:
    env = Environment(loader=PackageLoader("nnsee.report", "templates"), autoescape=select_autoescape(default=True))
    env.filters["svg"] = Markup  # our own SVG builders escape every text they embed
    env.filters["num"] = lambda v, digits=3: "n/a" if v is None else f"{v:.{digits}g}"
    env.filters["pct"] = lambda v: "n/a" if v is None else f"{100 * v:.1f}%"
    return env


def build_report(run_dir: str | Path, out: str | Path | None = None, *, splits: Splits | None = None,
                 max_units: int = 256, gallery: int = 16, sort_units: str = "outgoing-norm") -> Path:
    """Write ``out`` (default ``RUN/report``) ``/index.html`` (+ ``units-N.html`` pages and PNG/GIF figures).

    ``splits`` defaults to the run's own data, reloaded from its stored spec. Returns the index path.
    """
    from nnsee.data.spec import load_splits
    from nnsee.train.run import load_run

    started = time.perf_counter()
    run = load_run(run_dir)
    out = Path(out) if out is not None else Path(run_dir) / "report"
    out.mkdir(parents=True, exist_ok=True)
    data = splits if splits is not None else load_splits(run.data_spec)
    inp = ReportInput(run, data, max_units=max_units, gallery=gallery)

    sections: dict[str, Any] = {
        "overview": overview(inp),
        "templates": templates_section(inp),
        "units": units_section(inp, sort_by=sort_units),
        "class_units": class_units_section(inp),
        "gallery": gallery_section(inp),
        "standardization": standardization_section(inp),
        "evolution": evolution_section(inp),
        "cnn": cnn_section(inp),
    }
    _write_figures(out, sections)
    env = _environment()
    pages = sections["units"]["pages"][:MAX_UNIT_PAGES] if sections["units"] else [[]]
    if sections["units"] and len(sections["units"]["pages"]) > MAX_UNIT_PAGES:
        inp.notes.append(f"only the {MAX_UNIT_PAGES * max_units} most important units are shown")
    page_names = ["index.html"] + [f"units-{i}.html" for i in range(2, len(pages) + 1)]
    common = {"title": run.path.name, "version": nnsee.__version__, "notes": inp.notes, "page_names": page_names,
              "class_names": inp.class_names, "sections": sections}
    for number, (name, cards) in enumerate(zip(page_names, pages, strict=True), start=1):
        html = env.get_template("report.html.j2").render(**common, page=number, cards=cards,
                                                         seconds=time.perf_counter() - started)
        write_atomic(out / name, html.encode("utf-8"))
    return out / "index.html"


def _write_figures(out: Path, sections: dict[str, Any]) -> None:
    """The same views as PNG/GIF files beside the page, for slides and notebooks."""
    if sections["templates"]:
        save_png(sections["templates"].pop("png"), out / "templates.png")
    evolution = sections["evolution"]
    if evolution:
        write_atomic(out / "evolution.gif", evolution.pop("gif_bytes"))
