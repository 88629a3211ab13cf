"""Order webhooks from Shopify, WooCommerce, Stripe and the generic format.

`views` is the HTTP edge (registered by the app factory), `cli` the `tracker webhooks` commands.
"""
