"""Per-image standardization on two threads: the same bytes as one image at a time, and a forked child (a
DataLoader worker) standardizes too instead of waiting on its parent's threads, which it does not have."""

from __future__ import annotations

import os
import signal

import numpy as np

from nnsee.data.standardize import Standardizer


def _one_by_one(x: np.ndarray) -> np.ndarray:
    """Each image alone in float64, from the definition: (x − mean) / sqrt(mean((x − mean)²))."""
    out = np.empty_like(x)
    for i, image in enumerate(x.astype(np.float64)):
        centred = image - image.mean()
        scale = np.sqrt(np.mean(centred * centred))
        out[i] = 0.0 if scale == 0 else centred / scale
    return out


def test_threads_give_the_bytes_of_one_image_at_a_time() -> None:
    rng = np.random.default_rng(0)
    x = rng.random((3000, 1, 8, 8), dtype=np.float32)
    x[17] = 0.25  # a constant image becomes zeros
    threaded = Standardizer("image").transform(x)
    alone = np.concatenate([Standardizer("image").transform(x[i : i + 1]) for i in range(len(x))])
    assert np.array_equal(threaded, alone)
    np.testing.assert_allclose(threaded, _one_by_one(x), atol=2e-6)
    assert not threaded[17].any()


def test_a_forked_child_standardizes_after_its_parent_did() -> None:
    x = np.random.default_rng(1).random((3000, 1, 8, 8), dtype=np.float32)
    expected = Standardizer("image").transform(x)  # the parent's threads exist now
    pid = os.fork()
    if pid == 0:  # the child: one pass, then report through the exit code
        signal.alarm(20)  # a child waiting on threads it does not have is killed, not left hanging
        os._exit(0 if np.array_equal(Standardizer("image").transform(x), expected) else 3)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, "the forked child did not standardize (exit status above)"
