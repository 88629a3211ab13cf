"""Order webhooks from Shopify, WooCommerce, Stripe and the generic format."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the command line loads this package without the app
    from flask import Flask


def init_app(app: Flask) -> None:
    """Register the webhook receivers."""
    from tracker.webhooks import views

    views.init_app(app)
