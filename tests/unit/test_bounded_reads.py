"""The one bounded read (p2porch.boundedread) and the wording each of its callers keeps: flag files,
Compose files (a path or standard input), stack secret files, and ``secret``/``config create`` values
(a path or standard input). No daemon is reached (the host is a socket that does not exist)."""

from __future__ import annotations

import io
import sys

import pytest

from p2porch.boundedread import NotUtf8Error, TooLargeError, decode_utf8, read_bounded
from p2porch.cli import main
from p2porch.stack.yamlsafe import MAX_TEXT_BYTES
from p2porch.vault import MAX_VALUE_BYTES

NOWHERE = "unix:///nonexistent/p2porch.sock"


@pytest.fixture(autouse=True)
def no_daemon(monkeypatch, tmp_path):
    monkeypatch.setenv("P2PORCH_HOST", NOWHERE)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("P2PORCH_CONTEXT", raising=False)
    monkeypatch.delenv("P2PORCH_API_TOKEN", raising=False)


def run(argv: list[str], capsys) -> tuple[int, str]:
    code = main(argv)
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, err


def stdin_of(monkeypatch, data: bytes) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BufferedReader(io.BytesIO(data))))


def test_read_bounded_takes_up_to_the_limit_and_refuses_one_byte_more(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"x" * 10)
    assert read_bounded(str(path), 10) == b"x" * 10
    with pytest.raises(TooLargeError) as info:
        read_bounded(str(path), 9)
    assert info.value.limit == 9
    assert read_bounded(io.BytesIO(b"abc"), 3) == b"abc"
    with pytest.raises(TooLargeError):
        read_bounded(io.BytesIO(b"abcd"), 3)


def test_read_bounded_reads_an_endless_file_within_its_bound():
    with pytest.raises(TooLargeError):
        read_bounded("/dev/zero", 1024)


def test_read_bounded_raises_what_open_raises():
    with pytest.raises(FileNotFoundError):
        read_bounded("/nonexistent/f", 10)
    with pytest.raises(ValueError):
        read_bounded("a\0b", 10)


def test_decode_utf8_skips_a_bom_and_names_the_first_bad_byte():
    assert decode_utf8(b"\xef\xbb\xbfa=1\n") == "a=1\n"
    with pytest.raises(NotUtf8Error) as info:
        decode_utf8(b"a=1\nb=\xfe\n")
    assert (info.value.line, info.value.byte, info.value.offset) == (2, 0xFE, 6)


@pytest.mark.parametrize("kind", ["secret", "config"])
def test_a_value_past_the_limit_is_refused_with_its_wording(tmp_path, capsys, monkeypatch, kind):
    path = tmp_path / "v"
    path.write_bytes(b"x" * (MAX_VALUE_BYTES + 1))
    code, err = run([kind, "create", "s", str(path)], capsys)
    assert code == 2
    assert f"{path} is larger than the {kind} limit of 500 KiB ({MAX_VALUE_BYTES} bytes)" in err
    stdin_of(monkeypatch, b"x" * (MAX_VALUE_BYTES + 1))
    code, err = run([kind, "create", "s", "-"], capsys)
    assert code == 2 and f"- is larger than the {kind} limit of 500 KiB" in err


def test_a_value_file_that_cannot_be_opened_names_the_path(capsys):
    code, err = run(["secret", "create", "s", "/nonexistent/v"], capsys)
    assert code == 2 and "cannot read /nonexistent/v: No such file or directory" in err


def test_a_compose_file_past_the_limit_names_the_file(tmp_path, capsys, monkeypatch):
    path = tmp_path / "c.yml"
    path.write_bytes(b"#" * (MAX_TEXT_BYTES + 1))
    code, err = run(["stack", "config", "-c", str(path)], capsys)
    assert code == 2 and f"{path}: the Compose file is larger than {MAX_TEXT_BYTES} bytes" in err
    stdin_of(monkeypatch, b"#" * (MAX_TEXT_BYTES + 1))
    code, err = run(["stack", "config", "-c", "-"], capsys)
    assert code == 2 and f"-: the Compose file is larger than {MAX_TEXT_BYTES} bytes" in err


def test_a_compose_file_that_is_not_utf8_names_the_line_and_offset(tmp_path, capsys):
    path = tmp_path / "c.yml"
    path.write_bytes(b"services:\n  web: {image: \xff}\n")
    code, err = run(["stack", "config", "-c", str(path)], capsys)
    assert code == 2
    assert f"{path} line 2: the Compose file is not valid UTF-8 (byte 0xff at offset 25)" in err


def test_an_env_file_past_the_limit_names_the_file(tmp_path, capsys):
    compose = tmp_path / "c.yml"
    compose.write_text("services:\n  web:\n    image: busybox\n")
    (tmp_path / ".env").write_bytes(b"#" * (MAX_TEXT_BYTES + 1))
    code, err = run(["stack", "config", "-c", str(compose)], capsys)
    assert code == 2 and f"{tmp_path / '.env'}: the env file is larger than {MAX_TEXT_BYTES} bytes" in err


def test_a_stack_secret_file_past_the_limit_names_its_key(tmp_path, capsys):
    (tmp_path / "s.txt").write_bytes(b"x" * (MAX_VALUE_BYTES + 1))
    compose = tmp_path / "c.yml"
    compose.write_text(
        "services:\n  web:\n    image: busybox\n    secrets: [s]\nsecrets:\n  s:\n    file: ./s.txt\n"
    )
    code, err = run(["stack", "deploy", "-c", str(compose), "st"], capsys)
    assert code == 2
    assert (
        f"secrets.s: cannot read {tmp_path / 's.txt'}: the file is larger than {MAX_VALUE_BYTES} bytes" in err
    )
