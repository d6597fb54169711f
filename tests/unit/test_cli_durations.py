"""Duration flags read as Docker's CLI reads them (Go's ``time.ParseDuration``): a bare number other than 0
is refused before anything is sent, exit 2 naming the flag, in Go's words and with the form wanted; the
Go forms (``10s``, ``1m30s``, ``.5s``, ``0``) reach the spec unchanged."""

from __future__ import annotations

import pytest

from p2porch.cli import build_parser, main
from p2porch.cli import service as cli_service
from p2porch.model.units import parse_go_duration

FLAGS = [
    "--update-delay", "--update-monitor", "--rollback-delay", "--rollback-monitor", "--restart-delay",
    "--restart-window", "--stop-grace-period", "--health-interval", "--health-timeout",
    "--health-start-period", "--health-start-interval", "--scale-up-delay", "--scale-down-delay",
]  # fmt: skip


@pytest.mark.parametrize("command", ["create", "update"])
@pytest.mark.parametrize("flag", FLAGS)
def test_a_bare_number_is_refused_naming_the_flag_and_the_unit(command, flag, monkeypatch, capsys):
    monkeypatch.setattr(cli_service, "client_for", lambda args, **kw: pytest.fail("nothing may be sent"))
    argv = ["service", command, flag, "10", *(["--name", "w", "img"] if command == "create" else ["w"])]
    with pytest.raises(SystemExit) as refused:
        main(argv)
    assert refused.value.code == 2
    err = capsys.readouterr().err
    assert f'argument {flag}: invalid argument "10": time: missing unit in duration "10"' in err
    assert "a duration needs a unit: 10s" in err


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("1.5", 'time: missing unit in duration "1.5" (a duration needs a unit: 1.5s)'),
        ("abc", 'time: invalid duration "abc"'),
        ("1x", 'time: unknown unit "x" in duration "1x"'),
        ("5s10", 'time: missing unit in duration "5s10"'),
        ("1d", 'time: unknown unit "d" in duration "1d"'),  # Go has no days (compose-go does)
    ],
)
def test_what_go_refuses_is_refused_in_its_words(value, words, capsys):
    with pytest.raises(SystemExit) as refused:
        build_parser().parse_args(["service", "update", "--restart-delay", value, "w"])
    assert refused.value.code == 2
    assert f'argument --restart-delay: invalid argument "{value}": {words}' in capsys.readouterr().err


@pytest.mark.parametrize("value", ["0", "10s", "1m30s", ".5s", "1h2m3.25s", "250ms", "-0"])
def test_go_durations_reach_the_spec_unchanged(value):
    args = build_parser().parse_args(["service", "update", "--update-delay", value, "w"])
    assert args.update_delay == value


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("0", 0.0), ("+0", 0.0), ("10s", 10.0), ("1.5h", 5400.0), (".5s", 0.5), ("1.s", 1.0), ("-3s", -3.0),
     ("1µs", 1e-6), ("1μs", 1e-6), ("1h2m3.25s", 3723.25)],
)  # fmt: skip
def test_parse_go_duration_reads_go_s_grammar(text, seconds):
    assert parse_go_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", ".", ".s", "+", "s", "10", "1d", "9999999999h"])
def test_parse_go_duration_refuses_what_go_refuses(text):
    with pytest.raises(ValueError, match="^time: "):
        parse_go_duration(text)
    assert parse_go_duration("1d", days_weeks=True) == 86400.0
    assert parse_go_duration("2w", days_weeks=True) == 14 * 86400.0
