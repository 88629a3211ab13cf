"""The read side: attribution, rollups, the ROI report and the pages people open."""

from flask import Flask


def init_app(app: Flask) -> None:
    """Register the report API and pages."""
