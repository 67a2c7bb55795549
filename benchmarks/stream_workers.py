"""Worker processes keep the nnsee CNN fed (issue 14): an epoch of training steps on a PNG folder, decoded by 2
DataLoader worker processes, waits on data less than 10% of the time.

The folder: Fashion-MNIST's 10,000 test images written as 28x28 grey PNGs, one subfolder per class (``--quick``:
1,000). Read back through ``load_data(..., stream=True)`` and ``nnsee.data.loader.batches`` in a seeded shuffled order,
standardized per image in the workers. The loop: per batch of 128, the nnsee CNN's forward, cross-entropy, backward
and an Adam step (what ``fit`` does per step). Waiting = the time spent in ``next()`` for the batches after the first
(the first also pays the workers' start-up, reported apart); its share of the loop's time is judged. The same loop with
the batches decoded in the main process (``workers=0``) is shown beside it.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import IdleGate, Section, Target, fmt_s
from benchmarks.rounds import interleaved
from benchmarks.stream_data import cnn, fashion

WAIT_BOUND = 0.10
BATCH, WORKERS = 128, 2


def write_png_folder(root: Path, images: np.ndarray, labels: np.ndarray, names: list[str]) -> Path:
    """``root/<class>/<i>.png`` for each image (grey, 0..1 floats to 8 bits)."""
    from PIL import Image

    for name in names:
        (root / name).mkdir(parents=True, exist_ok=True)
    for i, (image, label) in enumerate(zip(images, labels, strict=True)):
        Image.fromarray(np.round(image[0] * 255).astype(np.uint8), mode="L").save(root / names[label] / f"{i}.png")
    return root


def epoch(data: Any, workers: int, seed: int) -> dict[str, float]:
    """One epoch of training steps over ``data`` read by ``workers`` processes: waiting and total seconds."""
    import torch
    import torch.nn.functional as F

    from nnsee.data.loader import batches
    from nnsee.data.standardize import Standardizer

    model = cnn(seed).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    order = np.random.default_rng(seed).permutation(len(data))
    stream = iter(batches(data, BATCH, transform=Standardizer("image").transform, positions=order, workers=workers))
    waits, started, n, sums = [], time.perf_counter(), 0, []
    while True:
        asked = time.perf_counter()
        batch = next(stream, None)
        waits.append(time.perf_counter() - asked)
        if batch is None:
            break
        sums.append((batch.index.numpy().copy(), float(batch.images.double().sum())))
        loss = F.cross_entropy(model(batch.images), batch.labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        n += len(batch.labels)
    total = time.perf_counter() - started
    first = waits[0]
    return {"total": total, "first": first, "wait": sum(waits[1:]), "share": sum(waits[1:]) / (total - first),
            "images": n, "batches": sums}


def bench(quick: bool, seed: int, gate: IdleGate, log: Any) -> Section:
    from nnsee.data import load_data

    test = fashion("test", quick, stream=False)
    scratch = Path(tempfile.mkdtemp(prefix="nnsee-bench-workers-"))
    try:
        log(f"stream-workers: writing {len(test):,} PNGs ...")
        folder = write_png_folder(scratch / "png", test.images, test.labels, [f"c{i}" for i in range(10)])
        data = load_data(str(folder), size=28, grayscale=True, val_fraction=0.0, test_fraction=0.0,
                         stream=True).train
        epoch(data.subset(np.arange(min(256, len(data)))), WORKERS, seed)  # warm-up
        contenders = [(f"{WORKERS} workers", lambda: epoch(data, WORKERS, seed)),
                      ("in the main process", lambda: epoch(data, 0, seed))]
        _, results, kept = interleaved(contenders, 1 if quick else 3, gate, log, "stream-workers")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    def med(name: str, key: str) -> float:
        return float(np.median([r[key] for r in results[name]]))

    rows = [[name, fmt_s(med(name, "total")), f"{med(name, 'images') / med(name, 'total'):,.0f}",
             fmt_s(med(name, "first")), fmt_s(med(name, "wait")), f"{100 * med(name, 'share'):.1f}%"]
            for name, _ in contenders]
    share = med(f"{WORKERS} workers", "share")
    section = Section(
        f"Training steps of the nnsee CNN on a folder of {len(data):,} PNGs (batch {BATCH}; median of {kept} "
        "interleaved rounds)",
        ["decoded by", "epoch s", "images/s", "first batch s", "waiting s", "waiting share"], rows,
        notes=["waiting: time in next() for every batch after the first, over the epoch's time after the first batch"],
    )
    section.targets.append(Target(f"share of the loop waiting on data with {WORKERS} workers", share, "<=", WAIT_BOUND,
                                  fmt=".3f", skip="--quick: speed not judged" if quick else ""))
    a, b = (results[name][0]["batches"] for name, _ in contenders)
    same = len(a) == len(b) and all(np.array_equal(i, j) and s == t for (i, s), (j, t) in zip(a, b, strict=True))
    section.targets.append(Target("the workers' batches equal the main process's (positions, pixel sums; 1 = yes)",
                                  float(same), ">=", 1.0, fmt=".0f"))
    section.raw = {name: [{k: v for k, v in r.items() if k != "batches"} for r in results[name]]
                   for name, _ in contenders}
    return section
