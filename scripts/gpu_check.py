"""Every method of nnsee on a device, against the same computation on the CPU in float64, on an adopted
ResNet-18-shaped model (``tests/zoo.py``: BasicBlocks, eval BatchNorm with non-trivial statistics, residual adds).

``python scripts/gpu_check.py [--device auto|cpu|cuda[:N]|mps] [--size 224] [--width 64]`` adopts the model into a
temporary run (``nnsee.adopt`` with ``code="tests/zoo.py:resnet18"``), loads it twice with ``load_run``: on the
device in float32, and on the CPU, then cast to float64 (the same float32 weights), and runs on both:

* every registered attribution method (:data:`~nnsee.methods.attribution.registry.METHODS`) with its defaults;
* Grad-CAM at two stages (``layer2``, ``layer4``); occlusion by both paths (full passes, and the region
  recomputation through the residual blocks, on the ResNet as written); the paper's occlusion maps;
* the top-9 images per channel of ``layer3`` (their activation values), and the deconvnet projections of those
  9 images (the reference's picks, so near-ties in the ranking do not change what is compared).

``--size``, ``--width``, ``--window``/``--stride`` (occlusion) shrink the work (the test suite runs it on the CPU
at 32 px). Each result is compared by ``max |device − cpu float64| / max |cpu float64|``, which must be at most 1e-4:
float32 rounding through 20 layers (at most 1.2e-5 measured, CPU float32 at 224 px, width 16). A gradient map may
instead pass with isolated flips: where a ReLU or max-pool input is a near-tie, float32 may take the other branch and
change the gradient there (measured at 224 px: one of SmoothGrad's 50 noisy copies flipped 77 of 2.5M elements,
1.2e-2 in the mean, 0.06% of its elements off by more than 1e-4). So: at most 1% of the elements off by more than
1e-4, and none by more than 0.05. Integrated gradients get 1e-2 (:data:`BOUNDS`: float32 cannot resolve its path
near the baseline). Forward-only results (occlusion, the top-9 values) have no branches and must meet 1e-4. TF32 is
turned off so CUDA float32 is compared at float32 precision. Prints each check with its error, the share of
elements off by more than 1e-4 and the device's time (on an accelerator the second of two runs); exits 1 on any
mismatch or error. ``--device cpu`` checks the script itself (its float32 against float64); ``mps`` is passed to
torch as is (untested by nnsee: Apple's backend has no float64, but only the reference, on the CPU, uses it).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
BOUND = 1e-4
#: Integrated gradients: its path points near the zero baseline are each stem channel's BatchNorm shift plus
#: alpha * signal with alpha down to 5.7e-4 (the first of 50 Gauss-Legendre nodes), which float32 resolves only to
#: about 1e-7 / 5.7e-4 = 2e-4 of the signal: max-pool choices there follow rounding (1.3e-3 measured, 1.4% of elements).
BOUNDS = {"integrated-gradients": 1e-2}
#: Gradient maps may also pass with isolated flips: at most this share of elements off by more than BOUND ...
FLIP_SHARE = 1e-2
#: ... and none off by more than this (of the largest value).
FLIP_BOUND = 0.05
#: Forward passes only: continuous in the inputs, so no flips (max-pool and ReLU values are continuous).
FORWARD_ONLY = ("occlusion", "paper occlusion maps", "top-9 values")
LAYER = "layer3"
Check = Callable[[torch.nn.Module, torch.Tensor], np.ndarray]


def rel(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """``max |a − b| / max |b|``, and the share of elements where ``|a − b| > BOUND · max |b|`` (shapes must agree)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} on the device, {b.shape} on the CPU")
    diff, top = np.abs(a - b), max(float(np.abs(b).max()), 1e-30)
    return float(diff.max() / top), float((diff > BOUND * top).mean())


def verdict(label: str, err: float, share: float) -> str:
    """``ok`` within float32 rounding; ``ok, isolated flips`` for a gradient map off only where a ReLU or max-pool
    near-tie went the other way; else ``FAIL``."""
    if err <= BOUNDS.get(label, BOUND):
        return "ok"
    gradient = not label.startswith(FORWARD_ONLY)
    return "ok, isolated flips" if gradient and share <= FLIP_SHARE and err <= FLIP_BOUND else "FAIL"


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def timed(fn: Callable[[], np.ndarray], device: torch.device) -> tuple[np.ndarray, float]:
    """``fn()``'s result and seconds; on an accelerator the second of two runs (the first warms its kernels)."""
    if device.type != "cpu":
        fn()
        sync(device)
    start = time.perf_counter()
    result = fn()
    sync(device)
    return result, time.perf_counter() - start


def adopted_runs(size: int, width: int, device: str, folder: Path) -> tuple[torch.nn.Module, torch.nn.Module]:
    """The zoo ResNet-18 adopted into ``folder``, loaded on ``device`` (float32) and on the CPU (float64)."""
    import nnsee
    from nnsee.train import load_run

    sys.path.insert(0, str(ROOT / "tests"))
    from zoo import resnet18

    code = f"{ROOT / 'tests' / 'zoo.py'}:resnet18"
    args = {"n_classes": 10, "width": width, "seed": 0}
    nnsee.adopt(resnet18(**args), class_names=[f"c{k}" for k in range(10)], input_shape=(3, size, size),
                normalize="imagenet", out=folder, code=code, code_args=args)
    on_device = load_run(folder, device=device).model
    reference = load_run(folder).model.double()
    return on_device, reference


def checks(size: int, batch: int, window: int | None, stride: int | None) -> dict[str, Check]:
    """What is compared, by name: ``fn(model, x)`` with ``x`` on the model's device and dtype."""
    from nnsee.methods.attribution import occlusion, occlusion_maps
    from nnsee.methods.attribution.deconvnet import project_activation
    from nnsee.methods.attribution.registry import METHODS, occlusion_window
    from nnsee.methods.dataset_views.top_images import top_images_per_channel

    t = (3 + 4 * np.arange(batch)) % 10  # classes 3, 7, 1, ...
    auto_window, auto_stride = occlusion_window((size, size))
    window, stride = window or auto_window, stride or auto_stride

    def method(name: str, **options: object) -> Check:
        if name == "occlusion":
            options = {"window": window, "stride": stride, **options}
        return lambda m, x: METHODS[name].attribute(m, x, t, "logit", **options).maps

    found: dict[str, object] = {}

    def top9(m: torch.nn.Module, x: torch.Tensor) -> np.ndarray:
        top = top_images_per_channel(m, x, LAYER, k=9)
        found.setdefault("top", top)  # the first model asked is the reference (see main)
        return top.values

    def projections(m: torch.nn.Module, x: torch.Tensor) -> np.ndarray:
        top = found["top"]
        channel = int(np.argmax(top.values[:, 0]))  # the channel with the strongest activation
        idx, pos = top.image_index[channel], top.position[channel]
        return project_activation(m, x[torch.as_tensor(idx, device=x.device)], LAYER, [channel] * len(idx), pos)

    return {
        **{name: method(name) for name in METHODS},
        "grad-cam layer2": method("grad-cam", layer="layer2"),
        "grad-cam layer4": method("grad-cam", layer="layer4"),
        "occlusion full": lambda m, x: occlusion(m, x, t, window=window, stride=stride, recompute="full"),
        "occlusion region": lambda m, x: occlusion(m, x, t, window=window, stride=stride, recompute="region"),
        "paper occlusion maps": lambda m, x: occlusion_maps(m, x, t, window=window, stride=stride,
                                                           layer="layer4").prob_true,
        f"top-9 values {LAYER}": top9,
        f"top-9 deconvnet projections {LAYER}": projections,
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="auto", help="auto (CUDA when present, else cpu), cpu, cuda[:N], mps")
    parser.add_argument("--size", type=int, default=224, help="image side (default 224)")
    parser.add_argument("--width", type=int, default=64, help="ResNet width (64: ResNet-18's 11.7M weights)")
    parser.add_argument("--batch", type=int, default=2, help="images per method call")
    parser.add_argument("--images", type=int, default=12, help="images the top-9 chooses from")
    parser.add_argument("--window", type=int, default=None, help="occlusion window (default: the registry's)")
    parser.add_argument("--stride", type=int, default=None, help="occlusion stride (default: the registry's)")
    args = parser.parse_args(argv)

    sys.path.insert(0, str(ROOT))
    from nnsee.errors import NnseeError
    from nnsee.train.config import resolve_device

    try:
        name = resolve_device(args.device)
    except NnseeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    device = torch.device(name)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    shown = torch.cuda.get_device_name(device) if device.type == "cuda" else name
    print(f"torch {torch.__version__} on {shown}: adopted ResNet-18 shape, width {args.width}, "
          f"{args.batch}x3x{args.size}x{args.size}, float32 vs the CPU in float64")
    print(f"  {'check':36s}  {'max err':>9s}  {'> 1e-4':>8s}  {'time':>12s}  verdict")
    sys.path.insert(0, str(ROOT / "tests"))
    from zoo import photo_like

    with tempfile.TemporaryDirectory() as folder:
        model, reference = adopted_runs(args.size, args.width, name, Path(folder) / "run")
    pool = photo_like(max(args.images, args.batch), args.size, seed=1, dtype=torch.float64)
    failures = 0
    for label, fn in checks(args.size, args.batch, args.window, args.stride).items():
        x = pool if label.startswith("top-9") else pool[: args.batch]
        try:
            want = fn(reference, x)  # the reference first: the projections use its top-9
            got, seconds = timed(lambda fn=fn, x=x: fn(model, x.float().to(device)), device)
            err, share = rel(got, want)
        except Exception as e:  # noqa: BLE001 (report every check, then fail)
            print(f"  {label:36s}  ERROR {type(e).__name__}: {e}")
            failures += 1
            continue
        said = verdict(label, err, share) if np.abs(want).max() > 0 else "FAIL (all zero)"
        failures += said.startswith("FAIL")
        print(f"  {label:36s}  {err:9.1e}  {share:8.1e}  {seconds * 1e3:9.1f} ms  {said}")
    print(f"{failures} FAILED" if failures else "all results agree")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
