"""The demo's pages (landing page, guided tour): one jinja2 environment (autoescape on) and one page frame with the
report's Content-Security-Policy: no scripts, images only from data: URIs, nothing fetched."""

from __future__ import annotations

from typing import Any

from jinja2 import DictLoader, Environment, select_autoescape
from markupsafe import Markup

FRAME = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'unsafe-inline'">
<title>nnsee · {{ title }}</title>
<style>
  body { font: 15px/1.5 system-ui, sans-serif; margin: 0 auto; max-width: 1100px; padding: 0 16px 48px; color: #222; }
  h1 { font-size: 24px; margin: 20px 0 4px; } h2 { font-size: 19px; margin-top: 36px; border-bottom: 1px solid #ddd; }
  .muted { color: #666; } img { image-rendering: pixelated; vertical-align: top; max-width: 100%; }
  .cards { display: flex; flex-wrap: wrap; gap: 14px; }
  a.card { display: block; width: 320px; border: 1px solid #ccd; border-radius: 8px; padding: 10px; color: inherit;
           text-decoration: none; } a.card:hover { border-color: #36c; box-shadow: 0 1px 6px #0002; }
  .card h3 { margin: 0 0 6px; font-size: 16px; } .card .thumb { height: 120px; display: flex; align-items: center; }
  .card .thumb img { max-height: 120px; } .acc { font-weight: 600; }
  .tourlink { display: inline-block; margin: 12px 0 18px; padding: 10px 16px; background: #36c; color: #fff;
              border-radius: 6px; font-size: 17px; text-decoration: none; }
  .figs { display: flex; flex-wrap: wrap; gap: 16px; align-items: flex-start; margin: 8px 0; }
  figure { margin: 0; } figcaption { font-size: 12px; color: #555; max-width: 420px; }
  .story { background: #eef4ff; padding: 8px 12px; border-radius: 6px; } .idea { color: #333; }
  nav a { margin-right: 10px; }
</style>
</head>
<body>
{% block body %}{% endblock %}
</body>
</html>
"""


def render(template: str, **context: Any) -> str:
    """``template`` (jinja2 source extending the frame, ``{% extends "frame" %}``) rendered with autoescape on; the
    ``svg`` filter marks our own SVG builders' output (they escape every text they embed) as safe."""
    env = Environment(loader=DictLoader({"frame": FRAME, "page": template}), autoescape=select_autoescape(default=True))
    env.filters["svg"] = Markup
    return env.get_template("page").render(**context)
