"""A container's log chunks as lines (agent/docker_executor.py ``_LineSplitter``): lines split at newlines
across chunks (Docker's 16 KiB partial messages joined back), a ``\\r\\n`` ending dropped; a line longer
than 64 KiB, with or without its newline yet, is split at 64 KiB (never inside a UTF-8 character) and
goes on as the next line, so a paused reader's 1,024 buffered lines hold at most 64 KiB each."""

from __future__ import annotations

from p2porch.agent.docker_executor import _END, MAX_LOG_LINE_BYTES, _LineSplitter

CAP = MAX_LOG_LINE_BYTES


def lines(*chunks: bytes) -> list[str]:
    split = _LineSplitter("t1")
    out = [item for chunk in (*chunks, _END) for item in split(chunk)]
    assert {task for task, _ in out} <= {"t1"}
    return [line for _, line in out]


def test_lines_join_across_chunks_and_lose_their_carriage_return() -> None:
    assert lines(b"one\r\ntw", b"o\nthr", b"ee") == ["one", "two", "three"]
    assert CAP == 64 * 1024


def test_a_long_line_without_a_newline_is_split_at_the_cap_as_it_arrives() -> None:
    split = _LineSplitter("t1")
    held: list[str] = []
    for _ in range(40):  # 640 KiB of one line in Docker's 16 KiB pieces, no newline yet
        held += [line for _, line in split(b"x" * (16 * 1024))]
        assert len(split._pending) <= CAP  # before: the whole line, growing without bound
    assert held == ["x" * CAP] * 9 and len(split._pending) == CAP
    assert [line for _, line in split(b"y\n")] == ["x" * CAP, "y"]


def test_a_long_complete_line_becomes_pieces_of_the_cap() -> None:
    got = lines(b"a" * (2 * CAP + 5) + b"\r\nnext\n")
    assert got == ["a" * CAP, "a" * CAP, "a" * 5, "next"]
    assert lines(b"b" * CAP + b"\n") == ["b" * CAP]  # exactly the cap: one line


def test_a_split_never_cuts_a_character_in_two() -> None:
    euro = "€".encode()  # 3 bytes
    data = b"x" * (CAP - 1) + euro + b"z\n"
    got = lines(data)
    assert got == ["x" * (CAP - 1), "€z"]
    assert all(len(line.encode()) <= CAP for line in got)
