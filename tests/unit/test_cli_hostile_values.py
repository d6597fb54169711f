"""Hostile values on the command line (h46 pass): each is a usage error naming its flag (exit 2), read
within a bound and never a traceback; no daemon is reached (the host is a socket that does not exist)."""

from __future__ import annotations

import pytest

from p2porch.cli import main
from p2porch.cli.localfiles import CA_FILE_BYTES, TEXT_FILE_BYTES, TOKEN_FILE_BYTES, read_flag_text
from p2porch.cli.update_edits import _removes
from p2porch.cli.util import UsageError
from p2porch.errors import ConfigError

NOWHERE = "unix:///nonexistent/p2porch.sock"


@pytest.fixture(autouse=True)
def no_daemon(monkeypatch, tmp_path):
    monkeypatch.setenv("P2PORCH_HOST", NOWHERE)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("P2PORCH_CONTEXT", raising=False)
    monkeypatch.delenv("P2PORCH_API_TOKEN", raising=False)


def big_file(tmp_path, name: str, size: int) -> str:
    """A regular file of ``size`` bytes (one line: a reader without a bound takes it whole)."""
    path = tmp_path / name
    path.write_bytes(b"x" * size)
    return str(path)


def run(argv: list[str], capsys) -> tuple[int, str]:
    code = main(argv)
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, err


@pytest.mark.parametrize(
    ("flag", "limit", "argv"),
    [
        ("--token-file", TOKEN_FILE_BYTES, ["--token-file", "{}", "node", "ls"]),
        ("--tls-ca", CA_FILE_BYTES, ["--tls-ca", "{}", "node", "ls"]),
        ("--env-file", TEXT_FILE_BYTES, ["service", "create", "--env-file", "{}", "busybox"]),
        ("--token-file", TOKEN_FILE_BYTES, ["join", "10.0.0.1", "--token-file", "{}"]),
    ],
)
def test_a_file_past_its_flags_bound_is_refused_unread(tmp_path, capsys, flag, limit, argv):
    """Before: read whole (``--token-file /dev/zero`` grew the CLI until the kernel killed it)."""
    path = big_file(tmp_path, "big", limit + 1)
    code, err = run([word.replace("{}", path) for word in argv], capsys)
    assert code == 2 and f"{flag}: cannot read {path}: the file is larger than {limit} bytes" in err


@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        (["--token-file", "a\0b", "node", "ls"], "--token-file"),
        (["--tls-ca", "a\0b", "node", "ls"], "--tls-ca"),
        (["service", "create", "--env-file", "a\0b", "busybox"], "--env-file"),
        (["secret", "create", "s", "a\0b"], "cannot read 'a\\x00b'"),
        (["stack", "config", "-c", "a\0b"], "-c"),
    ],
)
def test_a_path_holding_a_nul_byte_is_a_usage_error(capsys, argv, flag):
    """Before: open() raised ValueError past every ``except OSError``: a traceback."""
    code, err = run(argv, capsys)
    assert code == 2 and flag in err and "NUL byte" in err


def test_a_compose_file_naming_a_path_with_a_nul_byte(tmp_path, capsys):
    compose = tmp_path / "c.yml"
    compose.write_text('services:\n  web:\n    image: busybox\n    env_file: "a\\0b"\n')
    code, err = run(["stack", "config", "-c", str(compose)], capsys)
    assert code == 2 and "services.web.env_file[0]" in err and "NUL byte" in err
    compose.write_text(
        'services:\n  web:\n    image: busybox\n    secrets: [s]\nsecrets:\n  s:\n    file: "a\\0b"\n'
    )
    code, err = run(["stack", "deploy", "-c", str(compose), "st"], capsys)
    assert code == 2 and "secrets.s" in err and "NUL byte" in err


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["-H", "tcp://h:²", "node", "ls"], "--host"),  # str.isdigit admits ², int() refuses it
        (["-H", "tcp://h:" + "9" * 5000, "node", "ls"], "--host"),  # int() refuses 5000 digits
        (["service", "scale", "web=²"], "web: invalid replicas value"),  # docker/cli's words
        (["service", "scale", "web=" + "9" * 5000], "web: invalid replicas value"),
        (["service", "create", "--limit-cpu", "1e99999999", "busybox"], "--limit-cpu"),  # decimal.Overflow
        (["service", "create", "--reserve-cpu", "9" * 5000, "busybox"], "--reserve-cpu"),
        (["service", "create", "--limit-memory", "9" * 30, "busybox"], "--limit-memory"),  # no int64
        (["service", "create", "--reserve-memory", "9" * 5000, "busybox"], "--reserve-memory"),
        (["service", "create", "--shm-size", "9" * 400, "busybox"], "--shm-size"),  # float inf -> int()
        (["service", "create", "--limit-pids", "²", "busybox"], "--pids-limit"),
        (["service", "create", "--limit-pids", "9" * 5000, "busybox"], "--pids-limit"),
        (["join", "10.0.0.1:²", "--token", "x"], "PEER"),
    ],
)
def test_odd_numbers_are_usage_errors_naming_the_flag(capsys, argv, named):
    code, err = run(argv, capsys)
    assert code == 2 and named in err, err


def test_publish_rm_refuses_digits_int_cannot_read():
    with pytest.raises(UsageError, match="--publish-rm"):
        _removes("²", {"target": 80, "protocol": "tcp"})
    with pytest.raises(UsageError, match="--publish-rm"):
        _removes("8080:²", {"target": 80, "protocol": "tcp"})


def test_read_flag_text_names_the_flag_and_line_of_bad_utf8(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"A=1\nB=\xff\n")
    with pytest.raises(ConfigError) as info:
        read_flag_text(str(path), "--env-file")
    assert info.value.field == "--env-file" and "line 2 is not UTF-8 (byte 0xff)" in info.value.message


def test_a_container_label_past_the_limit_exits_2_naming_its_flag(capsys):
    code, err = run(["service", "create", "--container-label", "big=" + "x" * 300_000, "busybox"], capsys)
    assert code == 2 and "--container-label: labels: the labels are 300003 bytes in all" in err
    code, err = run(["service", "create", "--env", "BIG=" + "x" * 200_000, "busybox"], capsys)
    assert code == 2 and "--env: env: variable 'BIG' is 200005 bytes, more than the limit of 131072" in err
