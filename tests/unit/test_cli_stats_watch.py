"""``service stats --watch`` / ``node stats --watch``: the first poll passes the daemon's read barrier, the
later ones read its own copy (``stale=true``): a barrier round is a Raft entry, which a watch would write
every ``--interval`` for as long as it runs."""

from __future__ import annotations

from typing import Any

import pytest

from p2porch.cli import stats as cli_stats
from p2porch.cli.main import main


class Polls:
    """The daemon as a watch sees it: records each GET's params, answers no rows."""

    def __init__(self) -> None:
        self.params: list[dict[str, Any]] = []

    def get(self, path: str, **params: Any) -> Any:
        self.params.append({k: v for k, v in params.items() if v is not None})
        return []


@pytest.mark.parametrize(
    "argv", [["service", "stats", "--watch"], ["node", "stats", "-w", "--interval", "1"]]
)
def test_a_watch_reads_through_the_barrier_once_then_the_daemons_own_copy(
    argv: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    api = Polls()
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        if len(sleeps) == 3:
            raise KeyboardInterrupt  # the user's ^C ends the watch: exit 0

    monkeypatch.setattr(cli_stats, "client_for", lambda args, **kw: api)
    monkeypatch.setattr(cli_stats.time, "sleep", sleep)
    assert main(["--json", *argv]) == 0
    assert [p.get("stale") for p in api.params] == [None, "true", "true"]
    capsys.readouterr()


def test_without_watch_the_one_poll_passes_the_barrier(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    api = Polls()
    monkeypatch.setattr(cli_stats, "client_for", lambda args, **kw: api)
    assert main(["--json", "service", "stats", "web"]) == 0
    assert api.params == [{"service": "web"}]
    capsys.readouterr()
