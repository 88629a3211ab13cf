"""What every CSV import shares (spend, platform claims): the header checked first, blank lines
skipped, every bad line named, and nothing saved unless every line is good."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence

MAX_ERRORS_SHOWN = 20


def records(text: str, required: Sequence[str], optional: Sequence[str],
            error: type[Exception]) -> list[tuple[int, dict]]:
    """(line number, record with lower-cased column names) for each non-blank line after the
    header; raises `error` when the header lacks a required column."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    if not reader.fieldnames:
        raise error(f"The file is empty; the first line must name the columns {','.join(required)}.")
    reader.fieldnames = [(name or "").strip().lower() for name in reader.fieldnames]
    missing = [c for c in required if c not in reader.fieldnames]
    if missing:
        raise error(f"Line 1: missing column(s) {', '.join(missing)}; the header needs "
                    f"{','.join(required)} (optional: {','.join(optional)}).")
    numbered = []
    for record in reader:
        if not any((v or "").strip() for k, v in record.items() if k is not None):
            continue  # blank line
        numbered.append((reader.line_num, record))
    return numbered


def refuse(errors: list[str], error: type[Exception]) -> None:
    """Raise `error` listing the bad lines (the first MAX_ERRORS_SHOWN), if there are any."""
    if not errors:
        return
    shown = errors[:MAX_ERRORS_SHOWN]
    more = len(errors) - len(shown)
    summary = "\n".join(shown) + (f"\n... and {more} more" if more else "")
    raise error(f"Nothing was imported; fix these lines:\n{summary}", errors)
