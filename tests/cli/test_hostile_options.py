"""Hostile option values (issue 11, the low classes of the command line): each refused in one line, with no
traceback and nothing of the user's touched; links that can be clicked; explain that says what it did not do."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote, urlparse

import numpy as np
import pytest
import torch
from click.testing import CliRunner, Result
from PIL import Image
from tiny import banded_npz

from nnsee.cli import EPOCHS, SEED, main
from nnsee.errors import TrainingError
from nnsee.methods.attribution.target import parse_index
from nnsee.train.config import MAX_EPOCHS, SEED_MAX, TrainConfig

# Digits that str.isdigit() accepts but that are not ASCII: superscript two (int() refuses it), Arabic-Indic one and
# three and a mathematical bold one (int() reads them as 1, 3, 1); and ASCII spellings int() reads but an index is not.
NON_ASCII_DIGITS = ["²", "١", "٣", "𝟏"]
NOT_INDICES = [*NON_ASCII_DIGITS, "1_0", "+1", "-1", "1e0", ""]


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny 10x10, 3-class npz; a softmax run and a CNN run trained on it; one image with contrast."""
    root = tmp_path_factory.mktemp("hostile options")
    x, _ = banded_npz(root / "d.npz", 30, 10, step=3, width=3, noise=0.2, signal=0.8, seed=1)
    Image.fromarray((x[0] * 255).astype(np.uint8)).save(root / "zero.png")
    for name, extra in (("softmax", []), ("cnn", ["--channels", "4,8", "--kernel", "3"])):
        result = CliRunner().invoke(main, ["train", "--data", str(root / "d.npz"), "--model", name, "--epochs", "2",
                                           "--out", str(root / name), *extra])
        assert result.exit_code == 0, result.stderr
    return root


def _contents(folder: Path) -> dict[str, bytes | None]:
    return {str(p.relative_to(folder)): p.read_bytes() if p.is_file() else None for p in sorted(folder.rglob("*"))}


def _refused(args: list[str], code: int, *words: str) -> str:
    """Run the CLI; assert it stopped with ``code``, no exception escaped, and stderr's one error line (after click's
    usage lines for exit code 2) names ``words``. Returns that line."""
    result: Result = CliRunner().invoke(main, args)
    assert isinstance(result.exception, SystemExit) or result.exception is None, repr(result.exception)
    assert result.exit_code == code, (result.exit_code, result.stderr)
    errors = [line for line in result.stderr.splitlines() if line.lower().startswith("error")]
    assert len(errors) == 1 and "Traceback" not in result.output, result.stderr
    for word in words:
        assert word in errors[0], (word, errors[0])
    return errors[0]


def test_parse_index_reads_only_ascii_digits() -> None:
    for text in ["0", "7", "12", " 3 ", "0042", "9" * 100]:
        assert parse_index(text) == int(re.fullmatch(r"\s*([0-9]+)\s*", text).group(1))  # type: ignore[union-attr]
    for text in [*NOT_INDICES, " ", "1 2", "0x1", "9" * 101, "٣٣"]:
        assert parse_index(text) is None, text


def test_cli_ranges_are_the_configs() -> None:
    """The CLI's --seed and epoch ranges (click types, so --help shows them) are those TrainConfig checks."""
    assert (SEED.min, SEED.max) == (0, SEED_MAX) and (EPOCHS.min, EPOCHS.max) == (0, MAX_EPOCHS)


@pytest.mark.parametrize("seed", ["-1", str(2**70), str(2**32), "nan"])
def test_every_seed_option_refuses_out_of_range_seeds(base: Path, tmp_path: Path, seed: str) -> None:
    spec = str(base / "d.npz")
    commands = [["data", "info", spec], ["train", "--data", spec, "--out", str(tmp_path / "run")],
                ["study", "overfit", "--data", spec, "--out", str(tmp_path / "study")],
                ["study", "standardization", "--data", spec, "--out", str(tmp_path / "std")]]
    for command in commands:
        _refused([*command, "--seed", seed], 2, "--seed")
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def old_run(base: Path, tmp_path: Path) -> Path:
    """A run (with snapshots) that a refused `train --force` must leave byte for byte as it was."""
    out = tmp_path / "old run"
    result = CliRunner().invoke(main, ["train", "--data", str(base / "d.npz"), "--epochs", "2", "--snapshots", "0,2",
                                       "--out", str(out)])
    assert result.exit_code == 0, result.stderr
    return out


def _force(base: Path, run: Path, *bad: str) -> list[str]:
    return ["train", "--data", str(base / "d.npz"), "--epochs", "2", "--out", str(run), "--force", *bad]


def test_devices_are_checked_in_one_place_before_anything_is_touched(base: Path, old_run: Path) -> None:
    before = _contents(old_run)
    bad = ["meta", "bogus", "", "CPU", "cpu:3", "cuda:99", "cuda:x"]
    if not torch.cuda.is_available():
        bad.append("cuda")
    if not torch.backends.mps.is_available():
        bad.append("mps")
    for device in bad:
        line = _refused(_force(base, old_run, "--device", device), 1, "device")
        assert "use" in line  # says what to use instead
    assert _contents(old_run) == before


@pytest.mark.parametrize(
    ("option", "value"),
    [("--lr", "inf"), ("--lr", "-inf"), ("--lr", "nan"), ("--lr", "0"), ("--lr", "-1"),
     ("--l2", "inf"), ("--l2", "nan"), ("--l2", "-1"), ("--l2", "1e300")],
)
def test_hyperparameters_are_refused_before_training_without_blaming_another(base: Path, old_run: Path, option: str,
                                                                             value: str) -> None:
    before = _contents(old_run)
    line = _refused(_force(base, old_run, "--optimizer", "sgd", option, value), 1, option)
    assert "try" not in line and "stopped" not in line  # not the divergence message, whose advice would be wrong
    if option == "--l2":
        assert "learning rate" not in line
    assert _contents(old_run) == before


@pytest.mark.parametrize(
    ("option", "value"),
    [("--epochs", str(MAX_EPOCHS + 1)), ("--epochs", "-1"), ("--batch-size", "0"), ("--batch-size", str(2**70)),
     ("--patience", "-1"), ("--patience", str(2**70)), ("--snapshots", "-1"), ("--snapshots", "٣"),
     ("--snapshots", "1_0"), ("--hidden", "²"), ("--hidden", "١"), ("--channels", "٣,4")],
)
def test_counts_are_ascii_whole_numbers_in_range(base: Path, old_run: Path, option: str, value: str) -> None:
    before = _contents(old_run)
    model = ["--model", "cnn"] if option == "--channels" else ["--model", "mlp"] if option == "--hidden" else []
    _refused(_force(base, old_run, *model, option, value), 2, option)
    assert _contents(old_run) == before


@pytest.mark.parametrize(
    "config",
    [{"lr": "abc"}, {"lr": float("inf")}, {"l2": [1]}, {"epochs": "3"}, {"epochs": 2.5}, {"seed": True},
     {"seed": -1}, {"batch_size": None}, {"snapshots": "0,1"}, {"snapshots": [0, 2**70]}, {"device": "meta"},
     {"device": 0}, {"momentum": float("nan")}],
)
def test_run_json_settings_of_the_wrong_type_or_range_are_one_training_error(config: dict) -> None:
    with pytest.raises(TrainingError) as caught:
        TrainConfig.from_dict(config)
    assert "\n" not in str(caught.value) and len(str(caught.value)) < 300


def test_resume_of_a_run_json_with_a_bad_device_is_one_line(old_run: Path) -> None:
    """The recorded device is refused in one line where it would decide (Python's resume without device=); the
    command line's --device (auto by default) replaces it, so the run continues there."""
    from nnsee.train import resume

    path = old_run / "run.json"
    doc = json.loads(path.read_text())
    doc["config"]["device"] = "meta"
    path.write_text(json.dumps(doc))
    before = _contents(old_run)
    with pytest.raises(TrainingError, match="^unknown device 'meta'") as refused:
        resume(old_run, 1)
    assert "\n" not in str(refused.value) and _contents(old_run) == before
    result = CliRunner().invoke(main, ["resume", str(old_run), "--epochs", "1", "--device", "cpu"])
    assert result.exit_code == 0, result.stderr
    assert json.loads(path.read_text())["config"]["device"] == "cpu"


def test_study_l2_values_are_checked_before_any_run(base: Path, tmp_path: Path) -> None:
    for values in ["0,inf", "nan", "0,-1", "0,1e300"]:
        _refused(["study", "overfit", "--data", str(base / "d.npz"), "--out", str(tmp_path / "s"), "--per-class", "3",
                  "--l2", values], 1, "--l2")
    assert not (tmp_path / "s").exists()


def test_empty_data_spec_is_refused(tmp_path: Path) -> None:
    for command in (["data", "info", ""], ["train", "--data", " ", "--out", str(tmp_path / "r")],
                    ["study", "standardization", "--data", "", "--out", str(tmp_path / "s")]):
        _refused(command, 2, "SPEC is empty")
    assert list(tmp_path.iterdir()) == []


def test_serve_refuses_an_empty_host(base: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def never(*args: object) -> None:
        raise AssertionError("the server was started")

    monkeypatch.setattr("nnsee.serve.server.run_server", never)
    for host in ["", " ", "bad host", "127.0.0.1\n"]:
        _refused(["serve", str(base / "softmax"), "--host", host, "--port", "0"], 2, "--host")


@pytest.mark.parametrize("target", NOT_INDICES)
def test_explain_targets_are_names_or_ascii_indices(base: Path, tmp_path: Path, target: str) -> None:
    out = tmp_path / "maps"
    _refused(["explain", str(base / "cnn"), str(base / "zero.png"), "--method", "saliency", "--target", target,
              "--out", str(out)], 1, "target")
    assert not out.exists()


def test_explain_target_by_ascii_index_and_by_name(base: Path, tmp_path: Path) -> None:
    for target in ["2", " 2"]:
        result = CliRunner().invoke(main, ["explain", str(base / "cnn"), str(base / "zero.png"), "--method",
                                           "saliency", "--target", target, "--out", str(tmp_path), "--json"])
        assert result.exit_code == 0, result.stderr
        assert json.loads(result.stdout)["images"][0]["target"] == "2"


@pytest.mark.parametrize("channel", [*NON_ASCII_DIGITS, "1_0", "-1", ""])
def test_maximize_channels_are_ascii_digits(base: Path, tmp_path: Path, channel: str) -> None:
    out = tmp_path / "max.png"
    _refused(["maximize", str(base / "cnn"), "--target", f"conv1:{channel}", "--steps", "1", "--out", str(out)], 2,
             "conv1:")
    _refused(["maximize", str(base / "cnn"), "--target", channel or "²", "--steps", "1", "--out", str(out)], 1,
             "target")
    assert not out.exists()


@pytest.mark.parametrize(
    ("method", "option"),
    [("smoothgrad", "samples=٣"), ("smoothgrad", "samples=²"), ("smoothgrad", "seed=-1"),
     ("smoothgrad", "noise_level=inf"), ("integrated-gradients", "baseline=nan"),
     ("integrated-gradients", "steps=1e3"), ("integrated-gradients", "steps=1_0"), ("occlusion", "baseline=-inf"),
     ("occlusion", "window=𝟏")],
)
def test_explain_option_values_are_ascii_whole_numbers_or_finite(base: Path, tmp_path: Path, method: str,
                                                                  option: str) -> None:
    out = tmp_path / "maps"
    _refused(["explain", str(base / "cnn"), str(base / "zero.png"), "--method", method, "--option", option,
              "--out", str(out)], 1, option.partition("=")[0], repr(option.partition("=")[2]))
    assert not out.exists()
    good = {"samples": "3", "seed": "7", "noise_level": "0.2", "baseline": "0.5", "steps": "8", "window": "3"}
    name = option.partition("=")[0]
    result = CliRunner().invoke(main, ["explain", str(base / "cnn"), str(base / "zero.png"), "--method", method,
                                       "--option", f"{name}={good[name]}", "--out", str(out), "--json"])
    assert result.exit_code == 0, result.stderr


@pytest.mark.parametrize("ignored", [["--target", "1"], ["--target", "0"], ["--output", "softmax"],
                                     ["--target", "2", "--output", "softmax"]])
def test_explain_refuses_a_target_or_output_that_contributions_would_ignore(base: Path, tmp_path: Path,
                                                                            ignored: list[str]) -> None:
    out = tmp_path / "maps"
    line = _refused(["explain", str(base / "softmax"), str(base / "zero.png"), "--out", str(out), *ignored], 1,
                    "contributions", ignored[0])
    assert "--method" in line  # says what to use instead
    assert not out.exists()


def _blank_images(folder: Path) -> list[Path]:
    """Constant images of several kinds: black, white, mid-grey RGB, and a fully transparent RGBA canvas."""
    folder.mkdir(exist_ok=True)
    images = {"black.png": Image.new("L", (10, 10), 0), "white.png": Image.new("L", (30, 30), 255),
              "grey.png": Image.new("RGB", (10, 10), (128, 128, 128)),
              "clear.png": Image.new("RGBA", (20, 20), (255, 0, 0, 0))}
    for name, image in images.items():
        image.save(folder / name)
    return [folder / name for name in images]


def test_explain_says_an_image_is_blank_and_draws_no_map(base: Path, tmp_path: Path) -> None:
    blanks = _blank_images(tmp_path / "in")
    out = tmp_path / "maps"
    for run, method in (("softmax", "contributions"), ("cnn", "saliency")):
        for image in blanks:
            _refused(["explain", str(base / run), str(image), "--method", method, "--out", str(out)], 1, "blank")
        _refused(["explain", str(base / run), *map(str, blanks), "--method", method, "--out", str(out)], 1,
                 "every image is blank")
    assert not out.exists()
    result = CliRunner().invoke(main, ["explain", str(base / "softmax"), str(blanks[0]), str(base / "zero.png"),
                                       str(blanks[2]), "--out", str(out)])
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 3 and "blank" in lines[0] and "blank" in lines[2] and "blank" not in lines[1]
    assert sorted(p.name for p in out.iterdir()) == ["zero-contributions.png"]
    result = CliRunner().invoke(main, ["explain", str(base / "softmax"), str(blanks[1]), str(base / "zero.png"),
                                       "--out", str(out), "--json"])
    first, second = json.loads(result.stdout)["images"]
    assert first["blank"] is True and "png" not in first and "png" in second


def test_explain_never_overwrites_a_file_and_names_same_stem_images_apart(base: Path, tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    image = Image.open(base / "zero.png")
    image.save(tmp_path / "a" / "x.png")
    image.transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(tmp_path / "b" / "x.png")
    out = tmp_path / "maps"
    out.mkdir()
    (out / "x-contributions.png").write_bytes(b"the user's own file")
    (tmp_path / "elsewhere.txt").write_text("not to be written through")
    (out / "x-contributions-2.png").symlink_to(tmp_path / "elsewhere.txt")
    (out / "x-contributions-3.png").symlink_to(tmp_path / "missing")  # a dangling link is taken too
    before = _contents(out)
    args = ["explain", str(base / "softmax"), str(tmp_path / "a" / "x.png"), str(tmp_path / "b" / "x.png"),
            str(tmp_path / "a" / "x.png"), "--out", str(out), "--json"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.stderr
    pngs = [Path(r["png"]) for r in json.loads(result.stdout)["images"]]
    assert [p.name for p in pngs] == ["x-contributions-4.png", "x-contributions-5.png", "x-contributions-6.png"]
    assert len({p.read_bytes() for p in pngs}) == 2  # a/x.png twice gives the same map; b/x.png its own
    assert all(p.read_bytes().startswith(b"\x89PNG") for p in pngs)
    after = _contents(out)
    assert {k: v for k, v in after.items() if k in before} == before
    assert (tmp_path / "elsewhere.txt").read_text() == "not to be written through"
    result = CliRunner().invoke(main, args)  # again: three more new files, the first six untouched
    assert result.exit_code == 0 and _contents(out).items() >= after.items()
    assert len(list(out.iterdir())) == 9


def _printed_link(text: str) -> str:
    (link,) = re.findall(r"file://\S+", text)
    return link


def test_printed_links_are_encoded_and_lead_to_the_page(base: Path, tmp_path: Path) -> None:
    folder = tmp_path / "my report #1 100% ü"
    result = CliRunner().invoke(main, ["report", str(base / "softmax"), "--out", str(folder)])
    assert result.exit_code == 0, result.stderr
    link = _printed_link(result.stdout)
    assert link == (folder / "index.html").resolve().as_uri() and " " not in link and "#" not in link
    assert Path(unquote(urlparse(link).path)) == (folder / "index.html").resolve()
    out = tmp_path / "study with spaces"
    result = CliRunner().invoke(main, ["study", "standardization", "--data", str(base / "d.npz"), "--epochs", "1",
                                       "--out", str(out)])
    assert result.exit_code == 0, result.stderr
    link = _printed_link(result.stdout)
    assert " " not in link and Path(unquote(urlparse(link).path)) == (out / "index.html").resolve()
    assert (out / "index.html").is_file()


def test_the_console_prints_one_line_not_a_traceback(base: Path, tmp_path: Path) -> None:
    """The real command (not CliRunner): a seed and a device that used to end in tracebacks."""
    for bad in (["--seed", "-1"], ["--device", "meta"]):
        done = subprocess.run([sys.executable, "-m", "nnsee.cli", "train", "--data", str(base / "d.npz"), "--out",
                               str(tmp_path / "run"), *bad], capture_output=True, text=True, timeout=120)
        assert done.returncode in (1, 2) and "Traceback" not in done.stderr, done.stderr
        assert sum(line.lower().startswith("error") for line in done.stderr.splitlines()) == 1
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("bad", [["--model", "cnn", "--kernel", "99999"], ["--model", "mlp", "--hidden", "2000000"],
                                 ["--model", "mlp", "--hidden", "65536,65536,65536"],
                                 ["--model", "cnn", "--channels", "4096,4096"]],
                         ids=["kernel", "hidden", "three-layers", "channels"])
def test_absurd_model_sizes_are_one_line_under_a_memory_limit(base: Path, tmp_path: Path, bad: list[str]) -> None:
    """Sizes that once tried to allocate 3.4-40 GB: refused from arithmetic on the spec, in a child limited to
    6 GiB of address space (torch itself maps about 3), so a regression fails with MemoryError here."""
    limit = (
        "import resource, runpy, sys; resource.setrlimit(resource.RLIMIT_AS, (6 << 30, 6 << 30)); "
        "sys.argv = ['nnsee'] + sys.argv[1:]; runpy.run_module('nnsee.cli', run_name='__main__')"
    )
    done = subprocess.run([sys.executable, "-c", limit, "train", "--data", str(base / "d.npz"), "--out",
                           str(tmp_path / "run"), *bad], capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr[-2000:]
    errors = [line for line in done.stderr.splitlines() if line.lower().startswith("error")]
    assert len(errors) == 1 and "MemoryError" not in errors[0], done.stderr[-2000:]
    assert not (tmp_path / "run").exists()
