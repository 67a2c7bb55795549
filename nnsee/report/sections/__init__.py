"""The report's sections, declared once, in page order: :data:`SECTIONS`.

Each section is a module whose function turns the :class:`ReportInput` into a plain dict of strings and numbers
(or None to leave the section out), and a template partial that shows it. Adding a section is one module (its
function, and its partial as the module's ``TEMPLATE`` string) plus one :class:`Section` entry below;
``build_report`` computes, links and renders the sections in this order.
"""

from __future__ import annotations

from nnsee.report.sections import (
    class_units_section,
    cnn_section,
    confusion_section,
    evolution_section,
    faithfulness_section,
    gallery,
    invariance_section,
    layers_section,
    overview,
    representation_section,
    standardization_section,
    templates_section,
    units,
)
from nnsee.report.sections.common import ReportInput, Section

SECTIONS: list[Section] = [
    Section("overview", overview.overview, link="overview", template=overview.TEMPLATE),
    Section("templates", templates_section.templates_section, link="class templates",
            template=templates_section.TEMPLATE, files=templates_section.templates_png),
    Section("units", units.units_section, link="hidden units", template=units.TEMPLATE, paged=True),
    Section("class_units", class_units_section.class_units_section, link="class → units", anchor="class-units",
            template=class_units_section.TEMPLATE),
    Section("gallery", gallery.gallery_section, link="why this score", template=gallery.TEMPLATE),
    Section("confusion", confusion_section.confusion_section, link="confusion drill-down",
            template=confusion_section.TEMPLATE, files=confusion_section.confusion_files),
    Section("standardization", standardization_section.standardization_section, link="standardization",
            template=standardization_section.TEMPLATE),
    Section("evolution", evolution_section.evolution_section, link="evolution", template=evolution_section.TEMPLATE,
            files=evolution_section.evolution_gif),
    Section("cnn", cnn_section.cnn_section, link="what the convolutions see", template=cnn_section.TEMPLATE),
    Section("layers", layers_section.layers_section, link="layer by layer", template=layers_section.TEMPLATE),
    Section("faithfulness", faithfulness_section.faithfulness_section, link="which map to trust",
            template=faithfulness_section.TEMPLATE),
    Section("invariance", invariance_section.invariance_section, link="invariance",
            template=invariance_section.TEMPLATE),
    Section("representation", representation_section.representation_section, link="representation map",
            template=representation_section.TEMPLATE),
]

__all__ = ["SECTIONS", "ReportInput", "Section"]
