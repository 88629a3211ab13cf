"""The report side's tables: nightly attribution rollups."""
