"""`tracker webhooks ...`: operate the raw delivery inbox."""

import click


@click.group("webhooks")
def webhooks_group():
    """Inspect and replay stored webhook deliveries."""
