"""The lesson notebooks in examples/: generated from the outline (the committed files are what
scripts/make_lessons.py writes), and each runs top to bottom from a clean kernel of this venv's Python, with its
key figures in the outputs (template images, accuracies in range, the dot product's sums, the maps)."""

from __future__ import annotations

import base64
import importlib.util
import io
import re
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from nnsee.lessons.outline import OUTLINE

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
KERNEL = "nnsee-lessons"
TIMEOUT_S = 600  # per cell; the machine may be shared (each notebook took 19-80 s here under load)


def make_lessons():  # noqa: ANN201 - the script's module
    spec = importlib.util.spec_from_file_location("make_lessons", ROOT / "scripts" / "make_lessons.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_committed_notebooks_are_what_the_script_writes() -> None:
    wanted = make_lessons().lessons()
    assert list(wanted) == [f"{n:02d}-{s.key}.ipynb" for n, s in enumerate(OUTLINE, start=1)]
    for name, text in wanted.items():
        assert (EXAMPLES / name).read_text(encoding="utf-8") == text, f"{name} is stale: run scripts/make_lessons.py"
    assert sorted(p.name for p in EXAMPLES.glob("*.ipynb")) == sorted(wanted)
    assert make_lessons().main(["--check"]) == 0


def test_a_changed_outline_makes_the_notebooks_stale(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    module = make_lessons()
    assert module.main(["--out", str(tmp_path)]) == 0
    assert module.main(["--check", "--out", str(tmp_path)]) == 0
    changed = (OUTLINE[0].__class__(**{**OUTLINE[0].__dict__, "questions": ("A new question?",)}), *OUTLINE[1:])
    monkeypatch.setattr(module, "OUTLINE", changed)
    assert module.main(["--check", "--out", str(tmp_path)]) == 1
    assert "A new question?" in module.lessons()["01-templates.ipynb"]


def test_each_notebook_carries_its_steps_text_and_no_outputs() -> None:
    import nbformat

    for n, step in enumerate(OUTLINE, start=1):
        nb = nbformat.read(EXAMPLES / f"{n:02d}-{step.key}.ipynb", as_version=4)
        nbformat.validate(nb)
        first, last = nb.cells[0].source, nb.cells[-1].source
        assert first.startswith(f"# {n}. {step.title}") and step.idea in first
        assert all(q in last for q in step.questions)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert code and all(not c.outputs and c.execution_count is None for c in code)
        assert any("nnsee.show(" in c.source or c.source.rstrip().endswith(("run", "study")) for c in code)


# ---- executing them ----

@pytest.fixture(scope="module")
def kernel(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A kernelspec of this venv's Python in a temporary folder (never the user's Jupyter set-up)."""
    pytest.importorskip("nbclient", reason="nbclient is not installed: pip install -e '.[test]'")
    pytest.importorskip("nbformat", reason="nbformat is not installed: pip install -e '.[test]'")
    kernelspec = pytest.importorskip("ipykernel.kernelspec", reason="ipykernel is not installed")
    prefix = tmp_path_factory.mktemp("kernel")
    kernelspec.install(kernel_name=KERNEL, prefix=str(prefix))
    return str(prefix / "share" / "jupyter")


def execute(name: str, jupyter_path: str, work: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[list[dict], float]:
    """Run ``examples/<name>`` from a clean kernel in ``work``; its code cells' outputs and the seconds it took."""
    import nbformat
    from nbclient import NotebookClient

    monkeypatch.setenv("JUPYTER_PATH", jupyter_path)
    nb = nbformat.read(EXAMPLES / name, as_version=4)
    start = time.monotonic()
    NotebookClient(nb, kernel_name=KERNEL, timeout=TIMEOUT_S, resources={"metadata": {"path": str(work)}}).execute()
    seconds = time.monotonic() - start
    print(f"{name}: {seconds:.1f} s")
    return [c.outputs for c in nb.cells if c.cell_type == "code"], seconds


def html_of(outputs: list) -> list[str]:
    return [o["data"]["text/html"] for o in outputs if "text/html" in o.get("data", {})]


def text_of(outputs: list) -> str:
    return "".join(o.get("text", "") for o in outputs if o["output_type"] == "stream")


def views(cells: list[list], kind: str) -> list[str]:
    return [h for outputs in cells for h in html_of(outputs) if f'data-nnsee="{kind}"' in h]


def images(html: str) -> list[np.ndarray]:
    return [np.asarray(Image.open(io.BytesIO(base64.b64decode(b))))
            for b in re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)]


def accuracy(cells: list[list]) -> float:
    """The test accuracy the run's display shows, in [0, 1]."""
    (run,) = views(cells, "run")
    return float(re.search(r'data-metric="test-accuracy">([\d.]+)%<', run).group(1)) / 100


def check_templates(cells: list[list]) -> None:
    assert accuracy(cells) > 0.8
    (templates,) = views(cells, "weights")
    tiles = images(templates)
    assert len(tiles) == 11  # 10 templates and the colour bar
    assert all(t.shape == (56, 56, 3) and len(np.unique(t.reshape(-1, 3), axis=0)) > 20 for t in tiles[:10])
    said = text_of(cells[-1])
    assert re.search(r"reached (\d+\.\d)% test accuracy", said).group(1) == f"{100 * accuracy(cells):.1f}"


def check_hidden_units(cells: list[list]) -> None:
    assert accuracy(cells) > 0.85
    (cards,) = views(cells, "units")
    assert cards.count("data-unit=") == 4 and "top images" in cards
    assert re.search(r"Unit \d+ \(the first card: the largest outgoing weights of 300 units\)", text_of(cells[-1]))


def check_dot_product(cells: list[list]) -> None:
    assert accuracy(cells) > 0.8
    (e,) = views(cells, "explanation")
    assert len(images(e)) == 12  # the input, 10 contribution maps, the colour bar
    check = re.search(r"gives (-?[\d.]+); the model's score is (-?[\d.]+)", text_of(cells[-1]))
    assert abs(float(check.group(1)) - float(check.group(2))) < 2e-3


def check_standardization(cells: list[list]) -> None:
    (study,) = views(cells, "standardization")
    found = [float(v) / 100 for v in re.findall(r'data-metric="test-accuracy">([\d.]+)%<', study)]
    assert len(found) == 3 and max(found) > 0.8
    assert "test accuracy with" in text_of(cells[-1])


def check_overfitting(cells: list[list]) -> None:
    (study,) = views(cells, "overfit")
    found = [float(v) / 100 for v in re.findall(r'data-metric="val-accuracy">([\d.]+)%<', study)]
    assert len(found) == 4 and max(found) > 0.8
    assert len(images(study)) == 4 * 8
    assert "high-frequency share of the weight images" in text_of(cells[-1])


def check_cnn(cells: list[list]) -> None:
    assert accuracy(cells) > 0.8
    (filters,) = views(cells, "weights")
    assert len(images(filters)) == 6 + 1  # 6 first-layer filters and the colour bar
    (occlusion,) = views(cells, "explanation")
    assert "occlusion" in occlusion and len(images(occlusion)) == 3  # input, map, colour bar
    assert "hurts its" in text_of(cells[-1])


def check_attribution(cells: list[list]) -> None:
    assert accuracy(cells) > 0.8
    maps = views(cells, "explanation")
    assert len(maps) == 5 and all(len(images(m)) == 3 for m in maps)
    said = text_of(cells[-2])
    assert len(re.findall(r"rank correlation trained vs random: [+-][\d.]+", said)) == 5
    assert "changed least" in said
    delta = float(re.search(r"misses f\(x\) - f\(baseline\) by ([+-][\d.e+-]+)", text_of(cells[-1])).group(1))
    assert abs(delta) < 0.1


CHECKS = {"templates": check_templates, "hidden-units": check_hidden_units, "dot-product": check_dot_product,
          "standardization": check_standardization, "overfitting": check_overfitting, "cnn": check_cnn,
          "attribution": check_attribution}


@pytest.mark.parametrize("n,key", [(n, s.key) for n, s in enumerate(OUTLINE, start=1)])
def test_lesson_runs_top_to_bottom_with_its_key_figures(n: int, key: str, kernel: str, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    cells, seconds = execute(f"{n:02d}-{key}.ipynb", kernel, tmp_path, monkeypatch)
    assert not any(o["output_type"] == "error" for outputs in cells for o in outputs)
    assert "digits: 4000 training" in text_of(cells[0])
    CHECKS[key](cells)
