"""The report's sections, declared once, in page order: :data:`SECTIONS`.

Each section is a module whose function turns the :class:`ReportInput` into a plain dict of strings and numbers
(or None to leave the section out), and a template partial that shows it. Adding a section is one module (its
function, and its partial as the module's ``TEMPLATE`` string) plus one :class:`Section` entry below;
``build_report`` computes, links and renders the sections in this order. The partials of ``gallery``,
``evolution`` and ``cnn`` are files, ``templates/sections/<name>.html.j2``.
"""

from __future__ import annotations

from typing import Any

from nnsee.report.sections import (
    class_units_section,
    overview,
    standardization_section,
    templates_section,
    units,
)
from nnsee.report.sections.cnn_section import cnn_section
from nnsee.report.sections.common import ReportInput, Section
from nnsee.report.sections.evolution_section import evolution_section
from nnsee.report.sections.gallery import gallery_section


def _evolution_gif(context: dict[str, Any]) -> dict[str, bytes]:
    """``evolution.gif`` beside the page: the weight images at each snapshot epoch, animated."""
    return {"evolution.gif": context.pop("gif_bytes")}


SECTIONS: list[Section] = [
    Section("overview", overview.overview, link="overview", template=overview.TEMPLATE),
    Section("templates", templates_section.templates_section, link="class templates",
            template=templates_section.TEMPLATE, files=templates_section.templates_png),
    Section("units", units.units_section, link="hidden units", template=units.TEMPLATE, paged=True),
    Section("class_units", class_units_section.class_units_section, link="class → units", anchor="class-units",
            template=class_units_section.TEMPLATE),
    Section("gallery", gallery_section, link="why this score"),
    Section("standardization", standardization_section.standardization_section, link="standardization",
            template=standardization_section.TEMPLATE),
    Section("evolution", evolution_section, link="evolution", files=_evolution_gif),
    Section("cnn", cnn_section, link="what the convolutions see"),
]

__all__ = ["SECTIONS", "ReportInput", "Section"]
