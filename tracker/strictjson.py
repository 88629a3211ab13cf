"""Strict JSON for bodies from browsers and stores: UTF-8, no duplicate keys, no NaN or Infinity,
no NUL characters or lone surrogates, bounded nesting. Python's json module lets all of these
through; the collector (page views, events) and the webhooks (orders) both read with this.
"""

from __future__ import annotations

import json
from decimal import Decimal

from tracker.errors import MalformedJson

# A JSON document nested deeper than this is neither a page view nor an order.
MAX_DEPTH = 64
_BOM = "\ufeff"


def loads(raw: bytes, decimals: bool = False) -> object:
    """The JSON value of `raw`, or MalformedJson saying what is wrong. With `decimals`, numbers
    with a fraction are exact Decimals (money), else floats."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedJson("The body is not UTF-8 text.") from None
    if text.startswith(_BOM):
        text = text[1:]
    if not text.strip():
        raise MalformedJson("The body is empty; send a JSON object.")
    try:
        value = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constants,
                           parse_float=Decimal if decimals else float)
    except MalformedJson:
        raise
    except (ValueError, RecursionError):
        raise MalformedJson("The body is not valid JSON.") from None
    # Raw control characters and surrogates cannot survive strict decoding, only escapes can; and
    # a document can only nest as deep as it has brackets: most bodies need no walk at all.
    if "\\u" in text or "\\U" in text or text.count("{") + text.count("[") > MAX_DEPTH:
        _check(value)
    return value


def _no_duplicates(pairs: list[tuple[str, object]]) -> dict:
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise MalformedJson(f"The key {key[:40]!r} appears twice; send each field once.")
            seen.add(key)
    return result


def _no_constants(name: str):
    raise MalformedJson(f"The body contains {name}, which is not JSON; send numbers as finite values.")


def _check(value: object) -> None:
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise MalformedJson(f"The body is nested more than {MAX_DEPTH} levels deep.")
        if isinstance(item, str):
            _check_text(item)
        elif isinstance(item, dict):
            for key, child in item.items():
                _check_text(key)
                stack.append((child, depth + 1))
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)


def _check_text(text: str) -> None:
    if "\x00" in text:
        raise MalformedJson("Text fields must not contain NUL characters.")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise MalformedJson("Text fields must not contain lone surrogates.") from None
