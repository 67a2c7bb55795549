"""``build_report``: a static, self-contained HTML page of what a run learned (jinja2, autoescape on).

Every image is a data: URI and nothing is fetched, so the page opens from disk with no network. Class names and
all other text are escaped by jinja2; inline SVG charts escape their own text. The sections are those declared in
:data:`nnsee.report.sections.SECTIONS`, in that order.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import ChoiceLoader, DictLoader, Environment, PackageLoader, select_autoescape
from markupsafe import Markup

import nnsee
from nnsee.data.imageset import Splits
from nnsee.errors import MethodError, RunError, not_one_of
from nnsee.render import write_atomic
from nnsee.render.bidi import isolated
from nnsee.report import sections as declared
from nnsee.report.sections.common import ReportInput, Section
from nnsee.train.run import Run


def environment(sections: Sequence[Section] = ()) -> Environment:
    """The report's jinja2 environment: autoescape on, the ``svg``/``num``/``pct`` filters, the partials of
    ``sections`` (their modules' ``TEMPLATE`` strings) and the page templates in ``templates/``. One environment
    per set of partials, kept, so a process that writes several reports compiles each template once."""
    return _environment(tuple((s.partial, s.template) for s in sections))


@lru_cache(maxsize=8)
def _environment(partials: tuple[tuple[str, str], ...]) -> Environment:
    loader = ChoiceLoader([DictLoader(dict(partials)), PackageLoader("nnsee.report", "templates")])
    env = Environment(loader=loader, autoescape=select_autoescape(default=True))
    env.filters["svg"] = Markup  # our own SVG builders escape every text they embed
    env.filters["num"] = lambda v, digits=3: "n/a" if v is None else f"{v:.{digits}g}"
    env.filters["pct"] = lambda v: "n/a" if v is None else f"{100 * v:.1f}%"
    return env


def build_report(run: Run | str | Path, out: str | Path | None = None, *, splits: Splits | None = None,
                 data: str | Path | None = None, max_units: int = 256, gallery: int = 16,
                 sort_units: str = "outgoing-norm", device: str | None = None,
                 layers: Sequence[str] | None = None, analysis: str | Path | Sequence[str | Path] | None = None,
                 stream: bool | None = None, max_memory: int | None = None,
                 layer_images: Sequence[int] | None = None) -> Path:
    """Write ``out`` (default ``RUN/report``) ``/index.html`` (+ ``units-N.html`` pages and PNG/GIF figures).

    ``run`` is a loaded :class:`~nnsee.train.Run`, or a run folder, loaded here. ``splits`` defaults to the run's
    own data, reloaded from its stored spec; ``data`` is where that data set lives now if it was moved (same kind,
    same counts). ``out`` must be a real folder (or not yet exist), never a symbolic link, and no file the report
    writes may be one: a link is refused before anything is written, so nothing is written through it. Returns
    the index path. ``layers`` (dotted names, see ``nnsee layers RUN``) are the stages the CNN section shows
    (top-9 and Grad-CAM; default: the last conv module of each resolution, lifted to the block it ends).
    ``device`` (``auto``, ``cpu``, ``cuda[:N]``, ``mps``) is where the model computes: a folder is loaded there
    (default: the CPU), a loaded run's model is moved there (default: where it is). ``analysis``: the folder (or
    folders) of an ``nnsee analyze`` of this run: of its test split, the page shows its scores (accuracy, confusion
    matrix) instead of recomputing them; of its training split, its top-9 per feature map where it holds the shown
    layers. An analysis of other weights or of another split or data set is refused in one line. ``stream`` and
    ``max_memory`` decide how the run's own data is loaded (:func:`~nnsee.data.spec.load_splits`: streamed batch
    by batch when asked, or by default when the decoded set would not fit in ``max_memory``); every section reads a
    streamed set batch by batch or by index, and shows what it would show in memory. ``layer_images``: the test
    images (indices) the layer-by-layer section shows (default: the first correct one and the first mistake).
    """
    from nnsee.data.spec import load_splits
    from nnsee.methods.hidden_units import SORT_KEYS
    from nnsee.train.config import resolve_device
    from nnsee.train.run import load_run

    if sort_units not in SORT_KEYS:
        raise MethodError(not_one_of("sort_units", sort_units, SORT_KEYS))
    started = time.perf_counter()
    if not isinstance(run, Run):
        run = load_run(run, device=device)  # run.json's device never decides: the CPU unless device= says
    elif device is not None:  # a loaded run computes where asked: its model moves there
        run.model.to(resolve_device(device))
    out = Path(out) if out is not None else run.path / "report"
    check_report_folder(out)  # before the work, not only before the writes
    data_splits = splits if splits is not None else load_splits(run.data_spec, path=data, stream=stream,
                                                                max_memory=max_memory)
    top_from = None
    if analysis is not None:
        run, top_from = _with_analyses(run, data_splits, [analysis] if isinstance(analysis, (str, Path)) else analysis)
    inp = ReportInput(run, data_splits, max_units=max_units, gallery=gallery, sort_units=sort_units,
                      layers=list(layers) if layers is not None else None, top_from=top_from,
                      layer_images=list(layer_images) if layer_images is not None else None)
    if layers is not None:  # a wrong name is refused before any section is computed
        from nnsee.report.sections.cnn_section import chosen_stages, probe

        chosen_stages(inp, probe(run.model, inp.shape))
    if layer_images is not None:  # so is a test image that does not exist
        from nnsee.report.sections.layers_section import chosen_images

        chosen_images(inp)

    sections = list(declared.SECTIONS)
    contexts: dict[str, Any] = {s.name: s.context(inp) for s in sections}
    shown = [s for s in sections if contexts[s.name]]
    files: dict[str, bytes] = {}
    for s in shown:
        if s.files is not None:
            files.update(s.files(contexts[s.name]))
    paged = [s for s in shown if s.paged]
    if len(paged) > 1:
        raise ValueError(f"at most one report section can be paged, not {', '.join(s.name for s in paged)}")
    pages = contexts[paged[0].name]["pages"] if paged else [[]]
    page_names = ["index.html"] + [f"units-{i}.html" for i in range(2, len(pages) + 1)]
    common = {"title": isolated(run.path.name), "version": nnsee.__version__, "notes": inp.notes,
              "page_names": page_names, "class_names": inp.class_names, "sections": contexts, "shown": shown}
    template = environment(sections).get_template("report.html.j2")
    for number, (name, cards) in enumerate(zip(page_names, pages, strict=True), start=1):
        html = template.render(**common, page=number, cards=cards, seconds=time.perf_counter() - started)
        files[name] = html.encode("utf-8")
    report_folder(out, files)
    for name, content in files.items():
        write_atomic(out / name, content)
    return out / "index.html"


def _with_analyses(run: Run, splits: Splits, paths: Sequence[str | Path]) -> tuple[Run, Any]:
    """``run`` with its test metrics taken from the analysis of its test split, and the analysis of its training
    split (or None), from the analyses in ``paths`` (each checked: same weights; one of those two splits, once)."""
    from dataclasses import replace

    from nnsee.analysis import load_analysis
    from nnsee.analysis.report import check_run, same_data, scores

    found: dict[str, Any] = {}
    for path in paths:
        analysis = load_analysis(path)
        check_run(analysis, run)
        changed = {split: same_data(analysis, getattr(splits, split)) for split in ("test", "train")}
        split = next((name for name, diff in changed.items() if not diff), None)
        if split is None:
            raise RunError(f"the analysis in {path} is of neither this run's test split nor its training split "
                           f"({'; '.join(changed['test'][:3])} differ from the test split); make one with: nnsee "
                           f"analyze {run.path} --split test --out DIR")
        if split in found:
            raise RunError(f"two analyses of this run's {split} split were given ({found[split].path} and {path}); "
                           "give one per split")
        found[split] = analysis
    if "test" in found:
        run = replace(run, meta={**run.meta, "metrics": {**run.metrics, "test": scores(found["test"])}})
    return run, found.get("train")


def _refuse_link(path: Path) -> None:
    if path.is_symlink():
        raise RunError(f"{path} is a symbolic link (to {os.readlink(path)}): nnsee writes a report only into a real "
                       "folder, never through a link into another; remove the link, or give --out a folder of yours")


#: What every page nnsee writes starts its title with: how a folder is recognized as one of nnsee's reports.
PAGE_TITLE = b"<title>nnsee \xc2\xb7 "
#: Names of what nnsee's reports and study pages write (a folder holding only these is an interrupted report).
REPORT_NAMES = ("index.html", "units-*.html", "confusion-*.html", "*.png", "*.gif", "study.json", "runs")


def _is_nnsee_page(path: Path) -> bool:
    """Whether ``path`` is a regular file whose first 4 KiB hold the title of a page nnsee wrote."""
    from nnsee.io import open_regular

    try:
        with open_regular(path, "report page") as f:
            return PAGE_TITLE in f.read(4096)
    except (OSError, RunError):
        return False


def check_report_folder(out: Path, files: Iterable[str] = ("index.html",)) -> None:
    """Refuse (one-line :class:`RunError`, nothing written) an ``out`` that is a link or a file, a folder where one
    of ``files`` (what the report will replace) is a link, or a folder that holds anything but an nnsee report: it
    must not exist, be empty, have an ``index.html`` nnsee wrote, or hold only :data:`REPORT_NAMES` (an
    interrupted report). A user's own page is never overwritten."""
    from fnmatch import fnmatchcase

    from nnsee.io import is_tmp_name

    _refuse_link(out)
    if not out.exists():
        return
    if not out.is_dir():
        raise RunError(f"{out} is a file, not a folder: give --out a new or empty folder for the report")
    for name in files:
        _refuse_link(out / name)
    try:
        with os.scandir(out) as it:
            entries = sorted(e.name for _, e in zip(range(10_000), it, strict=False))
    except OSError as exc:
        raise RunError(f"cannot read the report folder {out}: {exc.strerror or exc}; give --out a folder you can "
                       "read and write") from exc
    if "index.html" in entries and _is_nnsee_page(out / "index.html"):
        return
    foreign = [n for n in entries if n == "index.html" or not (is_tmp_name(n) or
                                                               any(fnmatchcase(n, p) for p in REPORT_NAMES))]
    if foreign:
        shown = ", ".join(repr(n) for n in foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
        raise RunError(f"{out} holds files that are not an nnsee report ({shown}): nnsee writes a report only into a "
                       "new or empty folder, or over a report it wrote there; give --out another folder")


def report_folder(out: Path, files: Iterable[str]) -> None:
    """Create ``out`` (a real folder) once :func:`check_report_folder` accepts it and none of ``files`` in it (the
    names a report will replace) is a symbolic link; else a one-line :class:`RunError`, with nothing written."""
    files = list(files)
    check_report_folder(out, files)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RunError(f"cannot create the report folder {out}: {exc.strerror or exc}; give --out a folder "
                       "you can write") from exc
    for name in files:
        _refuse_link(out / name)  # again: checked just before writing
