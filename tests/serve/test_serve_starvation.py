"""The live page cannot be starved (issue 11, item 6): 40 clients sending their headers one byte every 0.5 s and 25
clients posting 16-MP PNGs, all at once, while a well-behaved client's ``GET /api/runs`` gets every answer (no 503,
no time-out at 10 s) and fast, because the decoding runs off the event loop. No marker: it runs in CI, in about 30 s.

Before: every answer of the good client was a 503 while the slow clients trickled (uvicorn's limit counted their
connections), and under the image flood it waited 8.7 s (median) for each."""

from __future__ import annotations

import numpy as np
from serve.attack_util import attack, burst, status_mb, summary
from serve.serve_util import start_server, stop

ATTACK_S = 12.0


def test_a_good_client_is_served_under_slow_headers_and_large_images(serve_runs, capsys):
    server = start_server([serve_runs["softmax"], serve_runs["mlp"]])
    try:
        idle = status_mb(server.proc.pid)
        tallies = attack(server.port, ATTACK_S, slow=40, images=25)
        peak = status_mb(server.proc.pid)
    finally:
        stop(server)
    good, slow, images = tallies["good"], tallies["slow"], tallies["images"]
    with capsys.disabled():
        print(f"\nstarvation: good client {summary(good)}; image clients {dict(images.statuses)}; slow clients "
              f"{dict(slow.statuses)}; server peak {peak:.0f} MB (idle {idle:.0f} MB)")
    assert set(good.statuses) == {"200"}, good.statuses  # no 503, no time-out
    assert good.statuses["200"] >= 3 * ATTACK_S  # about 10 a second when each takes milliseconds
    assert np.percentile(good.latencies, 95) < 2.0, summary(good)
    assert slow.statuses["connected"] > 40  # each slow client was dropped (and came back) at least once
    assert images.statuses.get("200", 0) > 0  # the server kept working on the images
    assert peak - idle < 1000, f"peak {peak:.0f} MB, idle {idle:.0f} MB"  # two decodes at a time, not 25


def test_a_hundred_clients_at_once_are_all_served(serve_runs):
    """100 clients each asking GET /api/runs in a loop: all answered (before: 7,763 of 8,339 were 503, uvicorn
    refusing every request while more than --limit-concurrency connections were open)."""
    server = start_server([serve_runs["softmax"]])
    try:
        tally = burst(server.port, clients=100, seconds=3.0)
    finally:
        stop(server)
    assert set(tally.statuses) == {"200"}, tally.statuses
    assert tally.statuses["200"] >= 300
