"""Seeing a run: one self-contained HTML page (``gankit report``) and the same page served
live while the run trains (``gankit serve``). See :mod:`gankit.report.page`."""
from __future__ import annotations

__all__ = ["write_report", "collect", "render", "ReportServer"]


def __getattr__(name):  # Plotly and the server load only when a page is made
    if name in ("write_report", "collect", "render"):
        from . import page

        return getattr(page, name)
    if name == "ReportServer":
        from .serve import ReportServer

        return ReportServer
    raise AttributeError(name)
