"""``evaluate`` on an adopted ResNet-18-shaped model at 3x224x224: memory bounded by chunks sized by the input, and
the standardization applied chunk by chunk (no standardized copy of the whole set)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

TESTS = Path(__file__).resolve().parents[1]

CHILD = """
import json, resource, sys
limit = 3 << 30
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
sys.path[:0] = sys.argv[1:3]
import numpy as np, torch
from zoo import resnet18
from nnsee.data.imageset import ImageSet
from nnsee.data.standardize import Standardizer
from nnsee.train.evaluate import evaluate

def peak_mb():
    return next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:")) / 1024

n = int(sys.argv[3])
model = resnet18(n_classes=10, width=16)
rng = np.random.default_rng(0)
data = ImageSet(rng.random((n, 3, 224, 224), dtype=np.float32), rng.integers(0, 10, n), [str(k) for k in range(10)])
with torch.no_grad():
    model(torch.zeros(2, 3, 224, 224))  # the first forward's own allocations, before the measurement
before = peak_mb()
scores = evaluate(model, data, Standardizer.normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)))
print(json.dumps({"extra_mb": peak_mb() - before, "accuracy": scores["accuracy"]}))
"""


def test_evaluate_at_224_holds_less_than_the_images() -> None:
    """256 images of 3x224x224 are 147 MiB. Measured in a child (VmHWM, one thread) at 128 images: the whole set
    standardized, then one forward of all of them took +270 MB; chunks of 27 standardized one at a time take +55 to
    +77 MB, whatever the number of images. Bound: three quarters of the images (the old way held a whole
    standardized copy and every image's activations at once)."""
    n = 256
    done = subprocess.run([sys.executable, "-c", CHILD, str(TESTS), str(TESTS.parent), str(n)], capture_output=True,
                          text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-2000:]
    measured = json.loads(done.stdout.splitlines()[-1])
    images_mb = n * 3 * 224 * 224 * 4 / 2**20
    print(f"evaluate: +{measured['extra_mb']:.0f} MB for {images_mb:.1f} MB of images")
    assert measured["extra_mb"] < 0.75 * images_mb, measured


def test_chunks_are_sized_by_the_input() -> None:
    from nnsee.train.evaluate import chunk_size

    assert chunk_size((1, 28, 28)) == 4096 and chunk_size((3, 64, 64)) == 341 and chunk_size((3, 224, 224)) == 27
    assert chunk_size((3, 4096, 4096)) == 1


def test_chunked_logits_equal_one_forward() -> None:
    """predict_logits over 70 images in chunks, standardized per chunk, equals one forward of the standardized set."""
    from nnsee.train.evaluate import predict_logits

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
                                torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(4, 5)).eval()
    images = np.random.default_rng(0).random((70, 3, 16, 16), dtype=np.float32)
    mean, std = np.float32(0.5), np.float32(0.25)
    with torch.no_grad():
        expected = model(torch.from_numpy((images - mean) / std)).numpy()
    got = predict_logits(model, images, batch_size=16, transform=lambda x: (x - mean) / std)
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)
