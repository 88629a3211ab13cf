"""The read side: attribution, rollups, the ROI report and the pages people open."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flask import Flask


def init_app(app: Flask) -> None:
    from reports import api, web

    api.init_app(app)
    web.init_app(app)
