"""Docker's ``table`` directive: the header is the template run over the fields' header names with
docker/cli's HeaderFunctions (``upper``/``lower``/``json``... print their text unchanged), and the lines
are aligned by Go's tabwriter as docker/cli configures it (cells at least 10 wide, 3 of padding)."""

from __future__ import annotations

import argparse

import pytest

from p2porch.cli.goformat import listing
from p2porch.cli.tabwriter import tabwrite

COLUMNS = ["name", "image", "created"]
ROWS = [["web", "nginx:1.27", "2 hours ago"], ["a-much-longer-name", "postgres:16", "now"]]


def _table(template: str) -> str:
    return listing(argparse.Namespace(format=template), COLUMNS, ROWS)


@pytest.mark.parametrize(
    ("text", "aligned"),
    [
        ("NAME\tIMAGE\nweb\tnginx", "NAME      IMAGE\nweb       nginx"),  # at least 10 wide
        ("ID\tX\nabcdefghijkl\ty", "ID" + " " * 13 + "X\nabcdefghijkl   y"),  # widest + 3
        ("a\tb\tc\nxx\nlonger-than-ten\tb\tc", "a         b         c\nxx\nlonger-than-ten   b         c"),
        ("a\t\nb\tc", "a         \nb         c"),  # a cell before an empty last one is padded
        ("no tabs\nat all", "no tabs\nat all"),
        ("é\tx\nab\ty", "é         x\nab        y"),  # widths in characters
    ],
)
def test_tabwriter_aligns_as_gos(text: str, aligned: str) -> None:
    assert tabwrite(text) == aligned


def test_a_table_heads_its_columns_with_the_template_over_the_header_names() -> None:
    assert _table("table {{.Name}}\\t{{.Image}}").splitlines() == [
        "NAME                 IMAGE",
        "web                  nginx:1.27",
        "a-much-longer-name   postgres:16",
    ]


def test_header_functions_leave_the_header_as_it_is() -> None:
    """``{{upper .Name}}`` and ``{{lower .Image}}`` head their columns NAME and IMAGE (Docker's
    HeaderFunctions), while the rows are changed; ``CreatedAt`` is headed CREATED as Docker's."""
    lines = _table("table {{lower .Name | upper}}\\t{{lower .Image}}\\t{{json .CreatedAt}}").splitlines()
    assert lines[0].split() == ["NAME", "IMAGE", "CREATED"]
    assert lines[1].split() == ["WEB", "nginx:1.27", '"2', "hours", 'ago"']


def test_a_table_template_may_span_lines_and_is_trimmed_of_spaces() -> None:
    assert _table("table   {{.Name}}\\n  {{.Image}}  ").splitlines()[:3] == ["NAME", "  IMAGE", "web"]


def test_pad_leaves_an_empty_text_empty_as_docker_clis_pad_with_space() -> None:
    rows = [["web", "", ""], ["db", "x", ""]]
    args = argparse.Namespace(format="{{.Name}}|{{pad .Image 2 1}}|")
    assert listing(args, COLUMNS, rows) == "web||\ndb|  x |"
