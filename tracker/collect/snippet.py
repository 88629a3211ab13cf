"""Placeholder until the collector lands."""

from flask import Flask


def init_app(app: Flask) -> None:
    pass
