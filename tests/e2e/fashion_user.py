"""The user's side of the adopted-model end-to-end test, written without nnsee: a 3-channel 64-px Fashion-MNIST image
folder made from the IDX files, the user's package holding :mod:`tests.e2e.fashion_user_model`, and a plain PyTorch
training loop with its own preprocessing (PIL and numpy, the torchvision convention: pixels to 0..1, then
``(x - mean) / std`` per channel)."""

from __future__ import annotations

import gzip
import importlib.util
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import numpy as np
import torch
from PIL import Image

FASHION = Path("/usr/share/datasets/fashion-mnist")
#: Fashion-MNIST's classes in label order; their folder names sort in this order too (nnsee lists folders sorted).
CLASSES = ("0-tshirt", "1-trouser", "2-pullover", "3-dress", "4-coat", "5-sandal", "6-shirt", "7-sneaker", "8-bag",
           "9-ankle-boot")
SIZE = 64
MEAN, STD = (0.25, 0.25, 0.25), (0.3, 0.3, 0.3)
NORMALIZE = f"{','.join(map(str, MEAN))}/{','.join(map(str, STD))}"
MODEL_FILE = Path(__file__).with_name("fashion_user_model.py")
ZOO = Path(__file__).parents[1] / "zoo.py"


def read_idx(path: Path) -> np.ndarray:
    """An IDX array from a gzip file: 2 zero bytes, dtype 0x08 (uint8), ndim, big-endian uint32 sizes, values."""
    raw = gzip.decompress(path.read_bytes())
    assert raw[:3] == b"\0\0\x08"
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(shape)


def write_folder(root: Path, prefix: str, n: int, seed: int) -> list[tuple[Path, int]]:
    """The first ``n`` images of the ``prefix`` IDX set as 64-px RGB PNGs in class folders: each 28-px image enlarged
    bilinearly, its grey tinted by a random colour per image (channel gains in [0.6, 1])."""
    images = read_idx(FASHION / f"{prefix}-images-idx3-ubyte.gz")[:n]
    labels = read_idx(FASHION / f"{prefix}-labels-idx1-ubyte.gz")[:n]
    rng = np.random.default_rng(seed)
    for name in CLASSES:
        (root / name).mkdir(parents=True)
    files = []
    for i, (image, label) in enumerate(zip(images, labels, strict=True)):
        grey = np.asarray(Image.fromarray(image).resize((SIZE, SIZE), Image.BILINEAR), np.float32)
        rgb = np.clip(grey[..., None] * rng.uniform(0.6, 1.0, 3), 0, 255).round().astype(np.uint8)
        path = root / CLASSES[label] / f"{i:05d}.png"
        Image.fromarray(rgb, "RGB").save(path)
        files.append((path, int(label)))
    return files


def write_package(root: Path) -> Path:
    """The user's package ``fashionnet``: the model file ``resnet.py`` and its sibling ``blocks.py``; returns the model
    file's path."""
    package = root / "fashionnet"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    shutil.copy(MODEL_FILE, package / "resnet.py")
    shutil.copy(ZOO, package / "blocks.py")
    return package / "resnet.py"


def import_file(path: Path) -> ModuleType:
    """The model file as the user runs it: its folder on sys.path while it imports (for ``blocks``)."""
    sys.path.insert(0, str(path.parent))
    try:
        spec = importlib.util.spec_from_file_location("_users_fashion_resnet", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(path.parent))
    return module


def preprocess(files: list[Path]) -> torch.Tensor:
    """The user's preprocessing: RGB pixels / 255, then (x - mean) / std per channel; (N, 3, 64, 64) float32."""
    x = np.stack([np.asarray(Image.open(f).convert("RGB"), np.float32) for f in files]) / 255
    x = (x - np.array(MEAN, np.float32)) / np.array(STD, np.float32)
    return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))


@dataclass
class Trained:
    model: torch.nn.Module
    test_predicted: np.ndarray  # the user's predictions on the test folder, in ``test_files`` order
    test_accuracy: float
    seconds: float


def train(model: torch.nn.Module, train_files: list[tuple[Path, int]], test_files: list[tuple[Path, int]],
          epochs: int, seed: int = 0) -> Trained:
    """A plain loop: Adam (lr 2e-3), batches of 32, cross-entropy; then the test accuracy in eval mode. One torch
    thread: a model this small trains fastest so (two threads on a shared 2-core machine ran 10x slower)."""
    start, threads = time.perf_counter(), torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _train(model, train_files, test_files, epochs, seed, start)
    finally:
        torch.set_num_threads(threads)


def _train(model: torch.nn.Module, train_files: list[tuple[Path, int]], test_files: list[tuple[Path, int]],
           epochs: int, seed: int, start: float) -> Trained:
    torch.manual_seed(seed)
    x = preprocess([f for f, _ in train_files])
    y = torch.tensor([k for _, k in train_files])
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    model.train()
    g = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        for batch in torch.randperm(len(x), generator=g).split(32):
            loss = torch.nn.functional.cross_entropy(model(x[batch]), y[batch])
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        predicted = torch.cat([model(b) for b in preprocess([f for f, _ in test_files]).split(256)]).argmax(1)
    truth = np.array([k for _, k in test_files])
    accuracy = float((predicted.numpy() == truth).mean())
    return Trained(model, predicted.numpy(), accuracy, time.perf_counter() - start)
