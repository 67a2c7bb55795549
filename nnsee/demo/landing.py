"""The landing page (``index.html``): one card per report of the demo, in the lecture's order (the runs of
:data:`nnsee.lessons.OUTLINE` as its steps first name them, then the others, e.g. the Fashion-MNIST runs), each with
a thumbnail drawn from the run's own weights, the question it answers, its test accuracy and its link; and a
prominent link to the guided tour."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nnsee.demo.figures import thumbnail
from nnsee.demo.page import render
from nnsee.lessons import OUTLINE
from nnsee.render import write_atomic

#: What a report of a run outside the outline answers (by folder name prefix).
OTHER_QUESTIONS = {"fashion-": "Do the same views still explain a model of photographed clothes, a harder task?"}


@dataclass
class Card:
    title: str
    steps: list[str]
    question: str
    accuracy: float | None
    link: str
    thumbnail: str | None


def lecture_order(entries: Sequence[Any]) -> list[Any]:
    """``entries`` ordered as OUTLINE first names their ``title`` (its steps' ``run``), the others after, as given."""
    rank = {run: i for i, run in reversed(list(enumerate(s.run for s in OUTLINE)))}
    return sorted(entries, key=lambda e: rank.get(e.title, len(OUTLINE)))


def cards(entries: Sequence[Any], out: Path) -> list[Card]:
    """One card per entry, in :func:`lecture_order`: the titles of the steps that read it and its first question."""
    made = []
    for e in lecture_order(entries):
        steps = [s for s in OUTLINE if s.run == e.title]
        question = steps[0].questions[0] if steps else next(
            (q for prefix, q in OTHER_QUESTIONS.items() if e.title.startswith(prefix)), "")
        made.append(Card(e.title, [s.title for s in steps], question, e.accuracy,
                         e.report.relative_to(out).as_posix(), thumbnail(e.title, e.data)))
    return made


TEMPLATE = """{% extends "frame" %}{% block body %}
<h1>nnsee demo: how neural networks see</h1>
<p class="muted">Every report this demo wrote, in the order of the lecture. Each opens offline.</p>
<a class="tourlink" href="tour.html">Start the guided tour →</a>
<div class="cards">{% for c in cards %}
<a class="card" href="{{ c.link }}"><h3>{{ c.title }}</h3>
<div class="thumb">{% if c.thumbnail %}<img src="{{ c.thumbnail }}" alt="{{ c.title }}">{% endif %}</div>
{% for s in c.steps %}<div>{{ s }}</div>{% endfor %}
<p><i>{{ c.question }}</i></p>
{% if c.accuracy is not none %}<div class="acc">test accuracy {{ '%.1f'|format(100 * c.accuracy) }}%</div>{% endif %}
</a>{% endfor %}
</div>
{% endblock %}"""


def write_landing(entries: Sequence[Any], out: str | Path) -> Path:
    """Write ``out/index.html`` for the demo's ``entries``; returns its path."""
    out = Path(out)
    html = render(TEMPLATE, title="demo", cards=cards(entries, out))
    return write_atomic(out / "index.html", html.encode("utf-8"))
