"""Several processes, one job: the plumbing between nnsee and ``torchrun`` (``torch.distributed``).

``torchrun --nproc-per-node N -m nnsee CMD ...`` starts N copies of the command with RANK, WORLD_SIZE, LOCAL_RANK,
LOCAL_WORLD_SIZE, MASTER_ADDR and MASTER_PORT set. :func:`setup` reads them and joins the process group (gloo on
CPUs, NCCL on GPUs); without torchrun it returns ``None`` and every caller runs as one process. Rules:

* one device per rank: ``cuda:LOCAL_RANK`` on GPUs; on CPUs each rank gets ``cores // LOCAL_WORLD_SIZE`` torch
  threads (at least 1) unless the user set OMP_NUM_THREADS (:func:`threads_per_rank`: torchrun sets it to 1 itself
  when it is unset, so the launcher's own starting environment says whether the user did).
* data split by rank: :func:`rank_positions` gives rank r the r-th contiguous block of ``0..n-1`` by
  ``np.array_split``'s rule (the first ``n mod W`` blocks one longer), so the blocks cover every position once.
* a rank that dies: torchrun sends SIGTERM to the others; :func:`setup` turns SIGTERM into :class:`Terminated` (a
  KeyboardInterrupt), so each command stops as on Ctrl-C, leaving only complete files, and says so in one line.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import signal
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from nnsee.errors import NnseeError

#: Seconds a collective waits for the other ranks before failing (``NNSEE_DIST_TIMEOUT`` overrides it).
DEFAULT_TIMEOUT = 600.0
_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK")


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived (torchrun stopping the ranks after one failed, or a kill): stop as on Ctrl-C."""


@dataclass(frozen=True)
class Dist:
    """This process's place in the job: ``rank`` of ``world_size``, ``local_rank`` on its machine, its device."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        """Rank 0: the one that writes files and prints."""
        return self.rank == 0


def launched() -> bool:
    """Whether torchrun started this process as one of several (WORLD_SIZE set and above 1)."""
    return _env_int("WORLD_SIZE", 1) > 1


def setup(device: str, timeout: float | None = None) -> Dist | None:
    """Join torchrun's process group, or ``None`` when not launched by torchrun with WORLD_SIZE > 1.

    ``device`` is the resolved device the command was given (``cpu``, ``cuda``, ``cuda:N``): on CUDA every rank takes
    ``cuda:LOCAL_RANK`` and NCCL, else the CPU and gloo. ``timeout`` (seconds; default ``NNSEE_DIST_TIMEOUT`` or
    600) bounds how long a collective waits for a silent rank.
    """
    if not launched():
        return None
    missing = [k for k in (*_ENV, "MASTER_ADDR", "MASTER_PORT") if not os.environ.get(k)]
    if missing:
        raise NnseeError(f"WORLD_SIZE is set but {', '.join(missing)} are not: start several processes with "
                         "`torchrun --nproc-per-node N -m nnsee ...`")
    rank, world, local = (_env_int(k, 0) for k in _ENV)
    local_world = max(1, _env_int("LOCAL_WORLD_SIZE", 1))
    kind = torch.device(device).type
    if kind == "cuda":
        if not torch.cuda.is_available() or local >= torch.cuda.device_count():
            have = torch.cuda.device_count() if torch.cuda.is_available() else 0
            raise NnseeError(f"rank {rank} wants cuda:{local} but this machine has {have} GPUs: run at most {have} "
                             "processes per node (--nproc-per-node) or use --device cpu")
        torch.cuda.set_device(local)
        where, backend = torch.device("cuda", local), "nccl"
    elif kind == "cpu":
        where, backend = torch.device("cpu"), "gloo"
        threads = threads_per_rank(local_world)
        if threads is not None:
            torch.set_num_threads(threads)
    else:
        raise NnseeError(f"torchrun runs on CPUs (gloo) or CUDA GPUs (NCCL), not on --device {device}")
    seconds = timeout if timeout is not None else float(os.environ.get("NNSEE_DIST_TIMEOUT", DEFAULT_TIMEOUT))
    import torch.distributed as tdist

    if not tdist.is_initialized():
        tdist.init_process_group(backend, rank=rank, world_size=world,
                                 timeout=datetime.timedelta(seconds=seconds),
                                 device_id=where if backend == "nccl" else None)
    _terminate_as_interrupt()
    return Dist(rank, world, local, where)


def teardown(dist: Dist | None) -> None:
    """Leave the process group (nothing when ``dist`` is None or the group is gone); SIGTERM kills again."""
    import torch.distributed as tdist

    if dist is None:
        return
    with contextlib.suppress(ValueError):
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if tdist.is_initialized():
        with contextlib.suppress(RuntimeError):  # a group whose peers are gone
            tdist.destroy_process_group()


def gather_to_main(dist: Dist, obj: Any) -> list[Any] | None:
    """Every rank's ``obj`` (picklable) on rank 0, in rank order; ``None`` on the other ranks."""
    import torch.distributed as tdist

    out: list[Any] | None = [None] * dist.world_size if dist.is_main else None
    tdist.gather_object(obj, out, dst=0)
    return out


def broadcast_from_main(dist: Dist, obj: Any) -> Any:
    """Rank 0's ``obj`` on every rank (the others' ``obj`` is ignored)."""
    import torch.distributed as tdist

    box = [obj if dist.is_main else None]
    tdist.broadcast_object_list(box, src=0)
    return box[0]


def all_agree(dist: Dist, ok: bool) -> bool:
    """True only if every rank says ``ok`` (MIN of 0/1 over the ranks); False too when a rank is gone."""
    import torch.distributed as tdist

    flag = torch.tensor([1 if ok else 0], dtype=torch.int32, device=dist.device)
    try:
        tdist.all_reduce(flag, op=tdist.ReduceOp.MIN)
    except (RuntimeError, tdist.DistError):
        return False
    return bool(flag.item())


def all_sum(dist: Dist, values: list[float]) -> list[float]:
    """``values`` summed element-wise over the ranks, in float64."""
    import torch.distributed as tdist

    t = torch.tensor(values, dtype=torch.float64, device=dist.device)
    tdist.all_reduce(t, op=tdist.ReduceOp.SUM)
    return t.tolist()


def block(n: int, rank: int, world: int) -> tuple[int, int]:
    """``[start, stop)`` of block ``rank`` when ``0..n-1`` is cut into ``world`` contiguous blocks, the first
    ``n mod world`` of them one longer (``np.array_split``'s rule)."""
    q, r = divmod(n, world)
    start = rank * q + min(rank, r)
    return start, start + q + (1 if rank < r else 0)


def rank_positions(n: int, dist: Dist | None) -> np.ndarray:
    """This rank's contiguous block of ``0..n-1`` (all of it without ``dist``), int64."""
    if dist is None:
        return np.arange(n, dtype=np.int64)
    start, stop = block(n, dist.rank, dist.world_size)
    return np.arange(start, stop, dtype=np.int64)


#: Words of the RuntimeErrors gloo and NCCL raise when a peer is gone or silent (torch raises them as plain
#: RuntimeErrors, not always as ``torch.distributed.DistError``).
_FAILURE_WORDS = ("gloo", "nccl", "by peer", "processgroup", "process group", "timed out", "timeout", "broken pipe")


def is_dist_failure(exc: BaseException) -> bool:
    """Whether ``exc`` is torch.distributed's own failure (a peer gone, a collective timed out)."""
    if any(c.__name__ == "DistError" and c.__module__.startswith("torch") for c in type(exc).__mro__):
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and any(word in text for word in _FAILURE_WORDS)


def threads_per_rank(local_world: int, launcher_environ: bytes | None = None) -> int | None:
    """Torch threads for one of ``local_world`` ranks on this machine: ``cores // local_world`` (at least 1), or
    ``None`` (keep torch's, which follows OMP_NUM_THREADS) when the user set OMP_NUM_THREADS.

    torchrun sets OMP_NUM_THREADS=1 for its workers when the user did not, so its presence proves nothing: the user
    set it only if the launcher (this process's parent) started with it, as ``/proc/<ppid>/environ`` (the
    environment a process was started with; ``launcher_environ`` in tests) shows. Unreadable: taken as set.
    """
    if "OMP_NUM_THREADS" in os.environ:
        if launcher_environ is None:
            try:
                with open(f"/proc/{os.getppid()}/environ", "rb") as f:
                    launcher_environ = f.read()
            except OSError:
                return None
        if any(item.startswith(b"OMP_NUM_THREADS=") for item in launcher_environ.split(b"\0")):
            return None
    return max(1, (os.cpu_count() or 1) // max(1, local_world))


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    try:
        return int(value) if value.strip() else default
    except ValueError:
        raise NnseeError(f"{name}={value!r} is not a whole number; torchrun sets it, do not set it by hand") from None


def _terminate_as_interrupt() -> None:
    def handler(signum: int, frame: Any) -> None:
        raise Terminated

    with contextlib.suppress(ValueError):  # not the main thread: leave SIGTERM as it is
        signal.signal(signal.SIGTERM, handler)
