"""``python -m nnsee`` and ``torchrun -m nnsee``: the ``nnsee`` command line.

Under torchrun a rank whose process group fails (another rank died, a collective timed out) prints one line,
``error: rank R: ...``, and exits with status 1 instead of a traceback.
"""

from __future__ import annotations

import os
import sys


def run() -> None:
    """Run the CLI as ``nnsee`` (the program name in its help and usage lines)."""
    from nnsee.cli import main

    if int(os.environ.get("WORLD_SIZE", "1") or 1) <= 1:
        main(prog_name="nnsee")
        return
    from nnsee.distributed import is_dist_failure

    try:
        main(prog_name="nnsee", standalone_mode=True)
    except Exception as exc:  # a distributed failure outside the commands' own handling
        if not is_dist_failure(exc):
            raise
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"error: rank {os.environ.get('RANK', '?')}: the process group failed (another rank stopped or "
              f"timed out): {first[:300]}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    run()
