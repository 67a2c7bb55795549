"""Weights files far larger than the adopted model can need are refused from their size, before anything is read,
in a child process under a 1 GiB address-space limit (its own VmHWM peak)."""

from __future__ import annotations

import json
import struct
from pathlib import Path

from limited_child import call, run_limited

from tests.adopt.user_code import ARGS

GiB = 1 << 30


def sparse(path: Path, head: bytes, size: int) -> str:
    with open(path, "wb") as f:
        f.write(head)
        f.truncate(size)
    return str(path)


def test_huge_weights_files_are_refused_from_their_size(project: dict[str, Path], tmp_path: Path) -> None:
    header = json.dumps({"w": {"dtype": "F32", "shape": [GiB], "data_offsets": [0, 4 * GiB]}}).encode()
    files = [sparse(tmp_path / "huge.pt", b"PK\x03\x04", 4 * GiB),
             sparse(tmp_path / "huge.safetensors", struct.pack("<Q", len(header)) + header, 8 + len(header) + 4 * GiB)]
    code = f"{project['pkg']}/mynets/zoo.py:resnet18"
    results, peak_kb = run_limited([
        call("nnsee.adoption:adopt_code", code, weights=file, code_args=ARGS, class_names=["a", "b", "c"],
             input_shape=[3, 32, 32], normalize="imagenet", out=str(tmp_path / f"run{i}"))
        for i, file in enumerate(files)], limit=GiB)
    for file, (seconds, outcome) in zip(files, results, strict=True):
        assert outcome.startswith("REFUSED ") and file in outcome, outcome
        assert "more than this model's weights can take" in outcome, outcome
        assert seconds < 5, seconds
        assert not (tmp_path / "run0" / "run.json").exists()
    assert peak_kb < 600_000, peak_kb
