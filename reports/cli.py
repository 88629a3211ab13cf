"""`tracker costs ...`, `tracker reports ...` and `tracker demo`."""

import click


@click.group("costs")
def costs_group():
    """Import ad and SMS spend."""


@click.group("reports")
def reports_group():
    """Build attribution rollups."""
