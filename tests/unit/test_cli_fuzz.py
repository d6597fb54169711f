"""Every command and flag of ``p2porch --help`` with hostile values (seeded): the CLI exits 0, 1 or 2 and
never raises (no traceback), each command line within a bound. No daemon is reached (the host is a
socket that does not exist), so nothing is written but a context under a temporary HOME. ``daemon``,
``sandbox``, ``init`` and ``join`` are left out: they act on this machine (a daemon, namespaces).
``P2PORCH_CLI_FUZZ_ALL=1`` tries every value on every flag (~13,000 command lines, minutes)."""

from __future__ import annotations

import argparse
import os
import random
import time
from collections.abc import Iterator

import pytest

from p2porch.cli import main
from p2porch.cli.main import build_parser

SKIP = {("daemon",), ("sandbox",), ("init",), ("join",), ("leave",), ("recover",)}
GLOBAL = {"--host", "-H", "--context", "--token-file", "--tls-ca", "--json"}
VALUES = [
    "²", "-1", "0", "9" * 30, "9" * 5000, "", " ", "\x00", "a\x00b", "é☃𝔘\u202e", "x" * 20000, "1e99999999",
    "nan", "-", "=", ":", "a=b=c", "{{.Nope}}", "{{range 3000000}}x{{end}}", "{{ 0x" + "f" * 5000 + " }}",
    "/dev/zero", "tcp://h:²", "10.0.0.1:²", "²:80", "web=²", "key=²", "1-²", "²/udp", "0x10", "/",
]  # fmt: skip
PER_FLAG = len(VALUES) if os.environ.get("P2PORCH_CLI_FUZZ_ALL") else 2
BOUND_S = 10.0


def leaves(
    parser: argparse.ArgumentParser, words: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                if (*words, name) not in SKIP:
                    yield from leaves(sub, (*words, name))
            return
    yield words, parser


def command_lines(rng: random.Random) -> Iterator[list[str]]:
    for words, parser in leaves(build_parser()):
        positionals = [a for a in parser._actions if not a.option_strings and a.nargs not in ("*", "?")]
        fill = ["web"] * len(positionals)
        for action in parser._actions:
            if not action.option_strings or isinstance(action, argparse._HelpAction):
                continue
            flag = action.option_strings[-1]
            if flag in GLOBAL and words != ("version",):
                continue
            if action.nargs == 0:
                yield [*words, flag, flag, *fill]  # a flag given twice
                continue
            for value in rng.sample(VALUES, PER_FLAG):
                yield [*words, flag, value, *fill]
            yield [*words, flag, "a", flag, "b", *fill]
        for i in range(len(positionals)):
            for value in rng.sample(VALUES, PER_FLAG):
                yield [*words, *fill[:i], value, *fill[i + 1 :]]


@pytest.fixture(autouse=True)
def no_daemon(monkeypatch, tmp_path):
    monkeypatch.setenv("P2PORCH_HOST", "unix:///nonexistent/p2porch.sock")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    for name in ("P2PORCH_CONTEXT", "P2PORCH_API_TOKEN", "P2PORCH_TOKEN"):
        monkeypatch.delenv(name, raising=False)


def test_every_command_and_flag_with_hostile_values(capsys):
    rng = random.Random(46)
    tried, failures = 0, []
    for argv in command_lines(rng):
        tried += 1
        start = time.monotonic()
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse's own usage errors
            code = exc.code
        except Exception as exc:  # noqa: BLE001 - what this test looks for
            failures.append((argv, f"{type(exc).__name__}: {str(exc)[:100]}"))
            continue
        finally:
            capsys.readouterr()
        if code not in (0, 1, 2) or time.monotonic() - start > BOUND_S:
            failures.append((argv, f"exit {code} after {time.monotonic() - start:.1f} s"))
    assert tried > 1000
    assert not failures, [([w[:30] for w in argv], why) for argv, why in failures[:20]]
