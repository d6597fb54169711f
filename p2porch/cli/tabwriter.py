"""Go's ``text/tabwriter`` as docker/cli's ``table`` directive runs it (pure): ``NewWriter(out, 10, 1, 3,
' ', 0)``.

Owns the alignment only: a line's tab-terminated cells form columns, the text after a line's last tab is
no column's (never padded); a column is the run of adjacent lines that have a cell there, as wide as its
widest cell plus the padding, at least the minimum width. Never runs a template (goformat.py does).
"""

from __future__ import annotations

#: docker/cli's table writer: minimum cell width 10, padding 3
MIN_WIDTH, PADDING = 10, 3


def tabwrite(text: str, min_width: int = MIN_WIDTH, padding: int = PADDING) -> str:
    """``text`` aligned as Go's tabwriter aligns it (flushed at the end; widths counted in characters)."""
    lines = [line.split("\t") for line in text.split("\n")]
    out: list[list[str]] = [[] for _ in lines]
    _format(lines, out, [], 0, len(lines), min_width, padding)
    return "\n".join("".join(parts) for parts in out)


def _format(
    lines: list[list[str]],
    out: list[list[str]],
    widths: list[int],
    first: int,
    end: int,
    min_width: int,
    padding: int,
) -> None:
    """Lines ``first``..``end`` whose columns left of ``len(widths)`` have those widths (Go's
    ``Writer.format``): each block of lines with a cell in the next column is measured, then its own
    columns further right, recursively."""
    column = len(widths)
    done = first
    this = first
    while this < end:
        if column >= len(lines[this]) - 1:
            this += 1
            continue
        _write(lines, out, widths, done, this)
        block = this
        width = min_width
        while this < end and column < len(lines[this]) - 1:
            width = max(width, len(lines[this][column]) + padding)
            this += 1
        _format(lines, out, [*widths, width], block, this, min_width, padding)
        done = this
    _write(lines, out, widths, done, end)


def _write(lines: list[list[str]], out: list[list[str]], widths: list[int], first: int, end: int) -> None:
    """Lines ``first``..``end``: each cell with a known width padded to it, the rest as they are."""
    for i in range(first, end):
        out[i] = [cell.ljust(widths[j]) if j < len(widths) else cell for j, cell in enumerate(lines[i])]
