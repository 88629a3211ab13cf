"""CSV cells a spreadsheet would run as formulas get an apostrophe; numbers stay numbers."""

import csv
import io

import pytest

from reports.csvsafe import guard_cell, write_rows


@pytest.mark.parametrize(
    "value,expected",
    [
        ("=1+2", "'=1+2"),
        ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1:A2)", "'@SUM(A1:A2)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ('=HYPERLINK("http://evil.example")', '\'=HYPERLINK("http://evil.example")'),
        ("-12.50", "-12.50"),
        ("+3", "+3"),
        ("-0.0583", "-0.0583"),
        ("1e5", "1e5"),
        ("attentive", "attentive"),
        ("black-friday", "black-friday"),
        ("", ""),
        (None, ""),
        (42, "42"),
    ],
)
def test_guard_cell(value, expected):
    assert guard_cell(value) == expected


def test_write_rows_guards_header_and_body():
    text = write_rows(["source", "=bad"], [["=evil()", "12.00"], ["ok", None]])
    rows = list(csv.reader(io.StringIO(text)))
    assert rows == [["source", "'=bad"], ["'=evil()", "12.00"], ["ok", ""]]
