"""Order webhooks from Shopify, WooCommerce, Stripe and the generic format."""

from flask import Flask


def init_app(app: Flask) -> None:
    """Register the webhook receivers."""
    from tracker.webhooks import views

    views.init_app(app)
