"""Placeholder until the report API lands."""

from flask import Flask


def init_app(app: Flask) -> None:
    pass
