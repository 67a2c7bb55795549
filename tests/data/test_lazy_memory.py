"""A streamed set larger than the process's whole address space is read batch by batch in bounded memory.

The child runs under ``RLIMIT_AS`` (so a regression that decodes the set whole fails there with MemoryError instead
of filling the machine) and reports its own peak (``VmHWM`` of ``/proc/self/status``, not ``ru_maxrss``, which a
child inherits across fork and exec) after the first batch and at the end.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

N, SIDE = 40_000, 64  # 164 MB of uint8 on disk, 655 MB as float32 (train: 557 MB): more than the child may map
LIMIT = 400 << 20

CHILD = """
import json, resource, sys
limit = int(sys.argv[2])
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
import numpy as np
from nnsee.data import Standardizer, load_data
from nnsee.errors import NnseeError

def peak():
    return next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:")) // 1024

splits = load_data(sys.argv[1], stream=None, max_memory=256 << 20, val_fraction=0.05)
data = splits.train
out = {"streamed": data.streamed, "nbytes": data.images.nbytes, "n": len(data)}
total, first = 0.0, None
for start in range(0, len(data), 512):
    x, kept, skipped = data.images.read(np.arange(start, min(start + 512, len(data))))
    total += float(x.sum(dtype=np.float64))
    first = first or peak()
out["sum"], out["first_mb"], out["after_read_mb"] = total, first, peak()
fit = Standardizer("pixel").fit(data.images)
out["fit_mean"], out["after_fit_mb"] = float(fit.mean.astype(np.float64).sum()), peak()
try:
    np.asarray(data.images)
    out["whole"] = "DONE"
except NnseeError as e:
    out["whole"] = "REFUSED " + str(e)
except MemoryError:
    out["whole"] = "CRASHED MemoryError"
out["end_mb"] = peak()
print(json.dumps(out))
"""


def _idx(path: Path, arr: np.ndarray) -> None:
    head = bytes([0, 0, 0x08, arr.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    with open(path, "wb") as f:
        f.write(head)
        f.write(arr.tobytes())


def test_a_streamed_set_larger_than_the_address_space_reads_in_bounded_memory(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    folder = tmp_path / "big"
    folder.mkdir()
    labels = (np.arange(N) % 10).astype(np.uint8)
    images = np.empty((N, SIDE, SIDE), np.uint8)
    for start in range(0, N, 5000):
        images[start : start + 5000] = rng.integers(0, 256, (min(5000, N - start), SIDE, SIDE), dtype=np.uint8)
    _idx(folder / "train-images-idx3-ubyte", images)
    _idx(folder / "train-labels-idx1-ubyte", labels)
    done = subprocess.run([sys.executable, "-c", CHILD, str(folder), str(LIMIT)], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout.splitlines()[-1])
    print(out)
    assert out["streamed"] and out["nbytes"] > LIMIT  # auto: past --max-memory 256M
    n = out["n"]
    from nnsee.data import load_data  # the reference: the split's positions, summed here from the uint8 array

    reference = load_data(str(folder), stream=True, val_fraction=0.05).train.images.index
    want = images[reference].astype(np.float64).sum() / 255.0
    assert n == len(reference) and abs(out["sum"] - want) < 1e-6 * want
    assert out["after_read_mb"] - out["first_mb"] < 30, out  # one batch of 512 is 8 MB
    assert out["after_fit_mb"] - out["first_mb"] < 70, out  # float64 sums of one image, chunks of 8 MB
    assert out["whole"].startswith("REFUSED ") and "256 MiB" in out["whole"] and "--max-memory" in out["whole"]
    assert "\n" not in out["whole"]
