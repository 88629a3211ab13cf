"""The read side: attribution, rollups, the ROI report and the pages people open."""

from flask import Flask


def init_app(app: Flask) -> None:
    from reports import api, web

    api.init_app(app)
    web.init_app(app)
