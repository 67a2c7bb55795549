"""Every registered attribution method on a CUDA device, against the same computation on the CPU in float64 (and
Captum's on the device where captum is installed), plus occlusion timings: region recomputation vs full passes vs
Captum.

``python scripts/gpu_check.py [--cpu]`` on a machine with a GPU (CI has none; nothing in nnsee needs one). TF32 is
turned off so float32 on the GPU is compared at float32 precision. Exits 1 if any map differs by more than 1e-4 of
its largest value.
"""

from __future__ import annotations

import copy
import functools
import sys
import time

import numpy as np
import torch

from nnsee.methods.attribution import METHODS, Method, occlusion, occlusion_maps
from nnsee.methods.attribution.deconvnet import project_activation
from nnsee.methods.dataset_views.top_images import top_images_per_channel
from nnsee.models import build_model

BOUND = 1e-4
# Integrated gradients near the zero baseline: every conv output is about its bias, so max pooling picks among
# near-ties that float32 and float64 break differently (1e-3 of the largest value, also CPU float32 vs float64).
# SmoothGrad at 3x64x64: 100 noisy copies are 100 chances for such a near-tie (2.8e-3 measured on the CPU).
BOUNDS = {"integrated-gradients": 1e-2, "smoothgrad": 1e-2}


def rel(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-30))


def sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def timed(fn, repeats: int = 3) -> float:  # noqa: ANN001
    fn()
    sync()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync()
        best = min(best, time.perf_counter() - start)
    return best


def registered(method: Method, t: np.ndarray, model: torch.nn.Module, x: torch.Tensor) -> np.ndarray:
    return method.attribute(model, x, t).maps


def check_maps(shape: tuple[int, int, int], dev: torch.device) -> int:
    """Every method on ``dev`` in float32 vs the CPU in float64; returns the number of failures."""
    torch.manual_seed(0)
    cpu = build_model("cnn", shape, 10).double().eval()
    gpu = copy.deepcopy(cpu).float().to(dev)
    x = torch.rand(4, *shape, dtype=torch.float64)
    t = np.array([0, 3, 5, 9])
    checks = {  # every registered method with its defaults, then the region machinery and the dataset views
        **{name: functools.partial(registered, method, t) for name, method in METHODS.items()},
        "occlusion region": lambda m, xx: occlusion(m, xx, t, window=4, stride=2, recompute="region"),
        "occlusion full": lambda m, xx: occlusion(m, xx, t, window=4, stride=2, recompute="full"),
        "paper occlusion maps": lambda m, xx: occlusion_maps(m, xx, t, window=4, stride=2).prob_true,
        "projection": lambda m, xx: project_activation(m, xx, "conv2", 3),
        "top-9 values": lambda m, xx: top_images_per_channel(m, xx, "conv2", k=3).values,
    }
    failures = 0
    for name, fn in checks.items():
        try:
            err = rel(fn(gpu, x.float().to(dev)), fn(cpu, x))
        except Exception as e:  # noqa: BLE001 (report every method, then fail)
            print(f"  {shape} {name}: ERROR {type(e).__name__}: {e}")
            failures += 1
            continue
        bound = BOUNDS.get(name, BOUND)
        failures += err > bound
        print(f"  {shape} {name}: max|device - cpu float64| / max = {err:.1e} {'ok' if err <= bound else 'FAIL'}")
    return failures


def time_occlusion(shape: tuple[int, int, int], n: int, window: int, stride: int, dev: torch.device) -> None:
    """Region recomputation vs full passes (vs Captum's default where installed), best of 3 (Captum: 1 run)."""
    torch.manual_seed(0)
    model = build_model("cnn", shape, 10).eval().to(dev)
    x = torch.rand(n, *shape, device=dev)
    line = f"  occlusion {shape} x{n} window {window} stride {stride}:"
    region = timed(lambda: occlusion(model, x, 3, window=window, stride=stride, recompute="region"))
    full = timed(lambda: occlusion(model, x, 3, window=window, stride=stride, recompute="full"))
    line += f" region {region * 1e3:.1f} ms, full {full * 1e3:.1f} ms"
    try:
        from captum.attr import Occlusion
    except ImportError:
        print(line + " (captum not installed)")
        return
    cw, cs = (shape[0], window, window), (shape[0], stride, stride)
    cap = timed(lambda: Occlusion(model).attribute(x, sliding_window_shapes=cw, strides=cs, target=3), repeats=1)
    ours = occlusion(model, x, 3, window=window, stride=stride)
    ref = Occlusion(model).attribute(x, sliding_window_shapes=cw, strides=cs, target=3).cpu().numpy()
    print(line + f", Captum default {cap * 1e3:.1f} ms; ours vs Captum {rel(ours, ref):.1e}")


def main(argv: list[str]) -> int:
    dry = "--cpu" in argv  # check the script itself on a CPU (timings then mean nothing)
    if not torch.cuda.is_available() and not dry:
        print("no CUDA device: nothing to check (--cpu runs the same checks on the CPU)")
        return 0
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    dev = torch.device("cpu" if dry else "cuda")
    print(f"torch {torch.__version__}, {'CPU (dry run)' if dry else torch.cuda.get_device_name(0)}")
    failures = sum(check_maps(shape, dev) for shape in ((1, 28, 28), (3, 64, 64)))
    for shape, n, window, stride in (((1, 28, 28), 1, 4, 1), ((1, 28, 28), 32, 4, 1), ((3, 128, 128), 1, 8, 4)):
        time_occlusion(shape, n, window, stride, dev)
    print("FAILED" if failures else "all maps agree")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
