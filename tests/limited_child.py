"""Library calls run in one child process under an address-space limit, so a call that tries to allocate too much
fails there (MemoryError) instead of exhausting the machine; each call is timed, and the child reports its own peak.

The peak is VmHWM, this process image's own: ``ru_maxrss`` would carry the pytest process's peak across fork and
exec. A call is ``(target, args, kwargs, then)``: ``module:function`` called with JSON ``args`` and ``kwargs``,
then each ``(method, args)`` of ``then`` called on the result (``load_run(run).state()``).
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

CHILD = """
import importlib, json, resource, sys, time
limit = int(sys.argv[1])
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
from nnsee.errors import NnseeError

for target, args, kwargs, then in json.loads(sys.argv[2]):
    module, _, name = target.partition(":")
    function = getattr(importlib.import_module(module), name)  # imported before the clock starts
    started = time.perf_counter()
    try:
        result = function(*args, **kwargs)
        for method, method_args in then:
            result = getattr(result, method)(*method_args)
        outcome = "DONE"
    except NnseeError as exc:
        outcome = "REFUSED " + str(exc)
    except BaseException as exc:
        outcome = "CRASHED " + type(exc).__name__ + ": " + str(exc)[:200]
    print(json.dumps([time.perf_counter() - started, outcome]), flush=True)
print(next(line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM:")), flush=True)
"""

Call = tuple[str, list[Any], dict[str, Any], list[tuple[str, list[Any]]]]


def call(target: str, *args: Any, then: list[tuple[str, list[Any]]] | None = None, **kwargs: Any) -> Call:
    """One call for :func:`run_limited`: ``call("nnsee.data.npz:load_npz", "x.npz")``."""
    return target, list(args), kwargs, then or []


def run_limited(calls: list[Call], limit: int = 1 << 30, timeout: float = 300) -> tuple[list[tuple[float, str]], int]:
    """Run ``calls`` in order in one child limited to ``limit`` bytes of address space: per call (seconds,
    outcome), the outcome ``DONE``, ``REFUSED <message>`` (an NnseeError) or ``CRASHED <type>: <message>``; and
    the child's peak resident memory in kB. A child that hangs past ``timeout`` fails the test."""
    try:
        done = subprocess.run([sys.executable, "-c", CHILD, str(limit), json.dumps(calls)], capture_output=True,
                              text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"a call hung: {exc.stdout!r}")
    assert done.returncode == 0, done.stderr[-2000:]
    *lines, peak_kb = done.stdout.splitlines()
    return [tuple(json.loads(line)) for line in lines], int(peak_kb)
