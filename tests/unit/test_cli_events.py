"""``events --since/--until/--filter`` as ``docker events`` takes them: times as durations ago, RFC 3339
dates or Unix seconds; bad values exit 2 naming the flag before the daemon is asked; the filters keep
the matching events (the command took no flag at all)."""

from __future__ import annotations

import datetime
import json
from typing import Any

import pytest

from p2porch.cli import cluster as cli_cluster
from p2porch.cli.main import main
from p2porch.control.events import EventHistory

EVENTS = [
    {"at": 10.0, "type": "service", "action": "created", "service": "web", "service_id": "s1"},
    {"at": 11.0, "type": "task", "task": "web.1", "task_id": "t1", "node": "n1", "state": "running"},
    {"at": 12.0, "type": "task", "task": "db.1", "task_id": "t2", "node": "n2", "state": "failed"},
    {"at": 13.0, "type": "node", "action": "down", "node": "n2"},
    {"at": 14.0, "type": "secret", "action": "created", "name": "pw", "version": 1},
    {"at": 15.0, "type": "leader", "action": "elected", "leader": "10.0.0.1:7947"},
]


class Api:
    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def stream(self, path: str, **params: Any) -> Any:
        self.calls.append((path, params))
        return iter([dict(e) for e in EVENTS])


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Api:
    fake = Api()
    monkeypatch.setattr(cli_cluster, "client_for", lambda args: fake)
    return fake


def shown(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_the_times_go_to_the_daemon_as_unix_seconds(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli_cluster.time, "time", lambda: 10_000.0)
    assert main(["events", "--since", "10m", "--until", "2026-12-06T09:30:00Z"]) == 0
    until = datetime.datetime(2026, 12, 6, 9, 30, tzinfo=datetime.UTC).timestamp()
    assert api.calls == [("/events", {"since": "9400.000", "until": f"{until:.3f}"})]
    assert main(["events", "--until", "1700000000.5"]) == 0
    assert api.calls[-1] == ("/events", {"until": "1700000000.500"})
    assert main(["events"]) == 0
    assert api.calls[-1] == ("/events", {})  # live only, as before


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["events", "--since", "yesterday"], "--since: 'yesterday' is neither a duration"),
        (["events", "--until", "nan"], "--until: 'nan' is neither a duration"),
        (["events", "--until", "-5"], "--until: '-5' is neither a duration"),
        (["events", "--since", "10m", "--until", "1h"], "--until: '1h' is before --since '10m'"),
        (["events", "--filter", "colour=red"], "--filter/-f: invalid filter 'colour'"),
        (["events", "--filter", "type=container"], "--filter/-f: invalid type filter 'container'"),
        (["events", "--filter", "type"], "--filter/-f: expected KEY=VALUE"),
    ],
)
def test_bad_values_exit_2_naming_the_flag(
    api: Api, capsys: pytest.CaptureFixture[str], argv: list[str], said: str
) -> None:
    try:
        code = main(argv)
    except SystemExit as exited:  # refused by the parser itself (the filters)
        code = int(str(exited.code))
    assert code == 2
    assert said in capsys.readouterr().err
    assert api.calls == []  # refused before the daemon was asked


def test_filters_keep_the_matching_events(api: Api, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--json", "events", "--filter", "service=web"]) == 0
    assert [e.get("service") or e.get("task") for e in shown(capsys)] == ["web", "web.1"]  # its tasks too
    assert main(["--json", "events", "-f", "type=task", "-f", "event=failed"]) == 0
    assert [e["task"] for e in shown(capsys)] == ["db.1"]  # a task's event is its state
    assert main(["--json", "events", "-f", "node=n2", "-f", "type=node", "-f", "type=task"]) == 0
    assert [e["type"] for e in shown(capsys)] == ["task", "node"]  # one key's values: any may match
    assert main(["--json", "events", "-f", "secret=pw"]) == 0
    assert [e["name"] for e in shown(capsys)] == ["pw"]
    assert main(["events", "-f", "type=leader"]) == 0
    out = capsys.readouterr().out
    assert "leader" in out and "service" not in out


def test_the_history_keeps_the_newest_events_within_the_window() -> None:
    history = EventHistory(limit=3)
    for event in EVENTS[:5]:
        history.record(event)
    kept = [e["at"] for e in history.between(None, None)]
    assert kept == [12.0, 13.0, 14.0]  # the oldest went
    assert [e["at"] for e in history.between(13.0, None)] == [13.0, 14.0]
    assert [e["at"] for e in history.between(None, 13.0)] == [12.0, 13.0]


def test_the_history_is_one_cluster_s() -> None:
    """The daemon keeps one history across member runs: joining another cluster starts it afresh; a
    run that does not know its cluster yet (a joiner's empty store) keeps it."""
    history = EventHistory()
    history.of_cluster("c1")
    history.record(EVENTS[0])
    for same in ("", "c1"):
        history.of_cluster(same)
        assert history.between(None, None) == [EVENTS[0]]
    history.of_cluster("c2")
    assert history.between(None, None) == [] and history.cluster_id == "c2"


def test_docker_event_paths_read_the_cluster_events(api: Api, capsys: pytest.CaptureFixture[str]) -> None:
    """A Swarm user's ``events --format '{{.Actor.ID}} ...'`` (was: can't evaluate field Actor); a task's
    ``.Action`` is its state, an object without an id (a leader) is named by its name."""
    template = (
        "{{.Type}} {{.Action}} {{.Actor.ID}} {{.Actor.Attributes.name}} {{.Status}} {{.Scope}} {{.Time}}"
    )
    assert main(["events", "--format", template]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "service created s1 web created swarm 10",
        "task running t1 web.1 running swarm 11",
        "task failed t2 db.1 failed swarm 12",
        "node down n2 n2 down swarm 13",
        "secret created pw pw created swarm 14",
        "leader elected 10.0.0.1:7947 10.0.0.1:7947 elected swarm 15",
    ]
    assert main(["events", "--format", "{{json .}}"]) == 0  # p2porch's own event, unchanged
    assert json.loads(capsys.readouterr().out.splitlines()[0]) == EVENTS[0]


def test_an_event_without_an_attribute_prints_no_value(api: Api, capsys: pytest.CaptureFixture[str]) -> None:
    """``.Actor.Attributes`` is a Go map: a key one event lacks prints ``<no value>`` and the stream
    goes on (it stopped with exit 2 at the first such event); ``.From`` is there, empty, as in Docker's
    ``events.Message``; a struct's unknown field is still an error."""
    assert main(["events", "--format", "{{.Actor.ID}} {{.Actor.Attributes.node}}|{{.From}}|"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "s1 <no value>||",
        "t1 n1||",
        "t2 n2||",
        "n2 n2||",
        "pw <no value>||",
        "10.0.0.1:7947 <no value>||",
    ]
    assert main(["events", "--format", "{{.Actor.Nope}}"]) == 1
    assert "Nope" in capsys.readouterr().err


def test_the_text_lines_name_objects_without_their_ids(api: Api, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["events"]) == 0
    assert capsys.readouterr().out.splitlines()[0].endswith("service  action=created service=web")
