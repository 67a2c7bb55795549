"""The data options on the command line: --stream/--no-stream, --max-memory SIZE, --workers N."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from photos import photo_folder

from nnsee.cli import main
from nnsee.data.budget import default_max_memory, parse_size
from nnsee.errors import DataError


def test_data_info_streams_a_folder_without_decoding_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import nnsee.data.lazy_folder as lazy_folder

    root = photo_folder(tmp_path / "p", 4, 32)

    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("an image was decoded")

    monkeypatch.setattr(lazy_folder, "_decode", never)
    for args in (["--stream"], ["--max-memory", "10K"]):  # 12 images of 1x28x28: 37,632 bytes as float32
        done = CliRunner().invoke(main, ["data", "info", str(root), *args, "--workers", "2", "--json"])
        assert done.exit_code == 0, done.output
        info = json.loads(done.output)
        assert info["streamed"] is True and info["n"] == 12 and info["pixel_range"] is None
    text = CliRunner().invoke(main, ["data", "info", str(root), "--stream"])
    assert text.exit_code == 0 and "not read (streamed" in text.output
    monkeypatch.undo()
    whole = CliRunner().invoke(main, ["data", "info", str(root), "--max-memory", "1G", "--json"])
    assert json.loads(whole.output)["streamed"] is False


@pytest.mark.parametrize("bad", ["lots", "-3M", "0", "2X"])
def test_a_bad_max_memory_is_one_line(tmp_path: Path, bad: str) -> None:
    done = CliRunner().invoke(main, ["data", "info", "digits", "--max-memory", bad])
    assert done.exit_code == 2 and "--max-memory" in done.output and "256M" in done.output
    assert "Traceback" not in done.output


def test_parse_size_and_the_default_budget() -> None:
    assert parse_size("256M") == 256 << 20 and parse_size("2G") == 2 << 30 and parse_size("1.5k") == 1536
    assert parse_size("4096") == 4096 and parse_size("1 GiB") == 1 << 30 and parse_size("3T") == 3 << 40
    for bad in ("", "G", "1..2G", "-1G", "0", "1 GB of RAM"):
        with pytest.raises(DataError, match="256M"):
            parse_size(bad)
    meminfo = Path("/proc/meminfo").read_text().splitlines()
    available = next(int(line.split()[1]) * 1024 for line in meminfo if line.startswith("MemAvailable"))
    assert abs(default_max_memory() - available / 2) < 0.2 * available  # read again: it moves a little
    np.testing.assert_equal(parse_size(7), 7)


def test_the_default_budget_is_half_of_what_a_cgroup_leaves(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import nnsee.data.budget as budget

    monkeypatch.setattr(budget, "CGROUP", str(tmp_path))
    monkeypatch.setattr(budget, "_host_available", lambda: 64 << 30)
    assert budget.default_max_memory() == 32 << 30  # no cgroup files: the host's MemAvailable
    (tmp_path / "memory.max").write_text("max\n")
    assert budget.default_max_memory() == 32 << 30  # no limit
    (tmp_path / "memory.max").write_text(f"{3 << 30}\n")
    (tmp_path / "memory.current").write_text(f"{1 << 30}\n")
    assert budget.default_max_memory() == 1 << 30  # a container's 3 GiB with 1 GiB used: half of 2 GiB
