"""Every registered attribution method through every front end, read from the one registry: the CLI's choices and
`nnsee methods`, `nnsee explain`, the live page's API, the report's sanity table and the sanity check. A method added
by one registry entry (and nothing else) shows up in all of them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from serve.serve_util import band, png

from nnsee.cli import main
from nnsee.methods.attribution import registry
from nnsee.methods.attribution.method import Attribution, Method, Option
from nnsee.methods.sanity import randomization_check
from nnsee.report import build_report
from nnsee.train import load_run

pytest.importorskip("httpx")
pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")
from starlette.testclient import TestClient  # noqa: E402  (needs httpx)

from nnsee.serve import create_app  # noqa: E402


def _edges(model, x, target, output, power: float = 1.0) -> Attribution:  # noqa: ANN001
    """A map of the input alone, |∂x/∂col|^power: a method that ignores the model (the sanity check must say so)."""
    x = np.asarray(x, dtype=np.float64)
    return Attribution("test-edges", np.abs(np.diff(x, axis=-1, prepend=0)) ** power)


EDGES = Method("test-edges", _edges, "edges of the input (a test method)", needs=frozenset(),
               options=(Option("power", float, 1.0, "exponent"),))


@pytest.fixture
def with_edges(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(registry.METHODS, EDGES.name, EDGES)  # the one registry entry


@pytest.fixture(scope="module")
def picture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("pictures") / "band1.png"
    path.write_bytes(band(1))
    return path


def _methods_everywhere(run: Path, picture: Path, tmp: Path, names: list[str]) -> None:
    cli = CliRunner()
    listed = json.loads(cli.invoke(main, ["methods", "--json"]).stdout)["methods"]
    assert [m["name"] for m in listed] == list(registry.METHODS)
    help_text = cli.invoke(main, ["explain", "--help"]).stdout
    client = TestClient(create_app([run]), base_url="http://127.0.0.1:8000")
    summary = client.get("/api/runs").json()["runs"][0]
    loaded = load_run(run)
    x = loaded.standardize(np.random.default_rng(0).uniform(size=(3, 1, 8, 8)).astype(np.float32))
    sanity = randomization_check(loaded.model, x, np.array([0, 1, 2]))
    for name in names:
        assert name in help_text
        assert name in summary["views"], summary["views"]
        result = cli.invoke(main, ["explain", str(run), str(picture), "--method", name, "--out", str(tmp), "--json"])
        assert result.exit_code == 0, result.stderr
        (answer,) = json.loads(result.stdout)["images"]
        assert answer["method"] == name and answer["map"]["shape"][-2:] == [8, 8] and Path(answer["png"]).is_file()
        page = client.post(f"/api/explain?run={run.name}&view={name}", content=band(1),
                           headers={"content-type": "image/png"})
        assert page.status_code == 200, page.text
        (shown,) = page.json()["maps"]
        assert shown["label"].startswith(name) and shown["src"].startswith("data:image/png")
        assert set(sanity[name]) == {"spearman", "spearman_signed", "ssim"}
    html = (build_report(run, tmp / "report")).read_text()
    for name in names:
        assert f'<td class="name">{name}</td>' in html


def test_every_registered_method_reaches_every_front_end(serve_runs: dict[str, Path], picture: Path,
                                                         tmp_path: Path) -> None:
    _methods_everywhere(serve_runs["cnn"], picture, tmp_path, list(registry.METHODS))


def test_a_method_added_by_one_registry_entry_reaches_every_front_end(serve_runs: dict[str, Path], picture: Path,
                                                                      tmp_path: Path, with_edges: None) -> None:
    _methods_everywhere(serve_runs["cnn"], picture, tmp_path, [EDGES.name])
    cli = CliRunner().invoke(main, ["explain", str(serve_runs["cnn"]), str(picture), "--method", EDGES.name,
                                    "--option", "power=2", "--out", str(tmp_path), "--json"])
    values = np.asarray(json.loads(cli.stdout)["images"][0]["map"]["values"])
    assert cli.exit_code == 0 and values.max() > 0
    refused = CliRunner().invoke(main, ["explain", str(serve_runs["cnn"]), str(picture), "--method", EDGES.name,
                                        "--option", "sigma=2"])
    assert refused.exit_code == 1 and refused.stderr.count("\n") == 1 and "has no option sigma" in refused.stderr
    # the input-only method scores 1.0 in the randomization check, as a map blind to the model must
    model = load_run(serve_runs["cnn"]).model
    x = np.random.default_rng(0).uniform(size=(3, 1, 8, 8))
    assert randomization_check(model, x, 0, [EDGES.name])[EDGES.name]["spearman"] == 1.0


def test_a_dense_run_offers_contributions_and_the_methods_that_apply(serve_runs: dict[str, Path]) -> None:
    client = TestClient(create_app([serve_runs["mlp"]]), base_url="http://127.0.0.1:8000")
    summary = client.get("/api/runs").json()["runs"][0]
    assert summary["views"][0] == "contributions" and summary["default_views"] == ["contributions"]
    assert "grad-cam" not in summary["views"] and "smoothgrad" in summary["views"]
    bad = client.post("/api/explain?run=mlp&view=grad-cam", content=png(np.zeros((8, 8), np.uint8)),
                      headers={"content-type": "image/png"})
    assert bad.status_code == 422 and "must be one of" in bad.json()["detail"]
