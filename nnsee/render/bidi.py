"""Names that cannot reorder the text around them (right-to-left override characters in class names).

A bidi control in a name (U+202E RIGHT-TO-LEFT OVERRIDE, the embeddings U+202A-U+202D, the isolates U+2066-U+2069,
the marks U+200E, U+200F, U+061C) would reverse or move the text that follows it on a page. :func:`plain` removes
them; :func:`isolated` then wraps the name in U+2068 FIRST STRONG ISOLATE ... U+2069 POP DIRECTIONAL ISOLATE, the
plain-text form of HTML's ``<bdi>``: a right-to-left name (Hebrew, Arabic) keeps its own direction, and the
numbers and words beside it keep theirs. It works in HTML text, attributes and SVG ``<text>`` alike.
"""

from __future__ import annotations

BIDI_CONTROLS = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
FSI, PDI = "\u2068", "\u2069"
_REMOVE = str.maketrans("", "", BIDI_CONTROLS)


def plain(text: object) -> str:
    """``text`` without bidi control characters."""
    return str(text).translate(_REMOVE)


def isolated(text: object) -> str:
    """``text`` without bidi controls, between FSI and PDI: it cannot reorder what stands around it."""
    return FSI + plain(text) + PDI
