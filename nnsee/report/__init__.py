"""The static HTML report of a run: ``build_report(RUN)`` writes ``RUN/report/index.html``."""

from nnsee.report.build import build_report

__all__ = ["build_report"]
