"""The fourth user walk's wrong values: each is refused by the flag it was given to (exit 2, nothing
sent). A value starting with ``-`` and a digit (``--limit-memory -5M``) was taken for a flag (argparse's
``expected one argument``); a bad ``--health-interval`` without ``--health-cmd`` blamed ``--health-cmd``."""

from __future__ import annotations

import pytest

from p2porch.cli import service as cli_service
from p2porch.cli.main import main


@pytest.mark.parametrize(
    ("argv", "error"),
    [
        (["--limit-memory", "-5M"], "--limit-memory: limit_memory: invalid size '-5M'"),
        (["--stop-grace-period", "-3s"], "--stop-grace-period: stop_grace_period: invalid duration '-3s'"),
        (["--reserve-cpu", "-1"], "--reserve-cpu: reserve_cpu: must not be negative"),
        (["--update-delay", "-5s"], "--update-delay: update.delay: invalid duration '-5s'"),
        (["--health-retries", "0"], "--health-retries: health.retries: must be at least 1"),
        (["--health-timeout", "-1s", "--health-cmd", "true"], "--health-timeout: health.timeout: invalid"),
    ],
)
def test_a_wrong_value_is_named_by_its_flag(argv, error, monkeypatch, capsys) -> None:
    monkeypatch.setattr(cli_service, "client_for", lambda args, **kw: pytest.fail("nothing may be sent"))
    assert main(["service", "create", "-d", "--name", "web", *argv, "img"]) == 2
    assert capsys.readouterr().err.startswith(f"p2porch: error: {error}")


def test_a_health_tuning_flag_alone_still_asks_for_the_command(monkeypatch, capsys) -> None:
    monkeypatch.setattr(cli_service, "client_for", lambda args, **kw: pytest.fail("nothing may be sent"))
    assert main(["service", "create", "-d", "--name", "web", "--health-interval", "5s", "img"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("p2porch: error: --health-cmd: health.cmd: a health check needs")


def test_a_flag_after_a_value_flag_is_still_a_flag(capsys) -> None:
    with pytest.raises(SystemExit) as refused:
        main(["service", "create", "--name", "web", "--limit-memory", "--replicas", "2", "img"])
    assert refused.value.code == 2
    assert "argument --limit-memory: expected one argument" in capsys.readouterr().err
