"""``--format`` of ``version``, ``info`` and ``events``, as Docker's (they took none): ``docker version
--format '{{.Server.Version}}'``, ``info --format '{{json .}}'``, ``events --format '{{json .}}'`` print
one line over the JSON view; a template that does not parse is exit 2 before the daemon is asked."""

from __future__ import annotations

import json
from typing import Any

import pytest

from p2porch.cli import cluster as cli_cluster
from p2porch.cli.main import main


class Api:
    asked = 0

    def get(self, path: str) -> Any:
        Api.asked += 1
        return {
            "/version": {"version": "9.9.9"},
            "/status": {"node": {"name": "n1"}, "daemon": {"pid": 1, "version": "9.9.9"}, "cluster": None},
        }[path]

    def stream(self, path: str, **params: Any) -> Any:
        return iter([{"at": 10.0, "type": "service", "action": "created", "service": "web<1>"}])


@pytest.fixture(autouse=True)
def api(monkeypatch: pytest.MonkeyPatch) -> None:
    Api.asked = 0
    monkeypatch.setattr(cli_cluster, "client_for", lambda args, **kw: Api())


@pytest.mark.parametrize(
    ("argv", "printed"),
    [
        (["version", "--format", "{{.Server.Version}}"], "9.9.9\n"),
        (["version", "-f", "{{.Client.Version}} {{.Server.Version}}"], f"{cli_cluster.__version__} 9.9.9\n"),
        (["info", "--format", "{{.Node.Name}} {{.Daemon.Pid}}"], "n1 1\n"),
        (["info", "-f", "{{json .Cluster}}"], "null\n"),
        (["events", "--format", "{{.Type}} {{.Action}} {{.Service}}"], "service created web<1>\n"),
        (
            ["events", "--format", "{{json .}}"],
            '{"action":"created","at":10,"service":"web<1>","type":"service"}\n',
        ),  # fmt: skip
        (
            ["events", "--format", "json"],
            '{"action":"created","at":10,"service":"web<1>","type":"service"}\n',
        ),
    ],
)
def test_a_views_format_prints_one_line_over_its_json_view(argv, printed, capsys) -> None:
    assert main(argv) == 0
    assert capsys.readouterr().out == printed


def test_version_json_format_is_the_whole_view_on_one_line(capsys) -> None:
    assert main(["version", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["daemon"] == {"version": "9.9.9"}


@pytest.mark.parametrize("command", ["version", "info", "events"])
def test_a_template_that_does_not_parse_is_refused_before_the_daemon_is_asked(command, capsys) -> None:
    with pytest.raises(SystemExit) as info:
        main([command, "--format", "{{.Nope"])
    assert info.value.code == 2
    assert (
        "--format: template parsing error: template: :1: unclosed action"
        in capsys.readouterr().err.replace("/-f", "")
    )
    assert Api.asked == 0


def test_info_answers_the_swarm_paths_scripts_read(monkeypatch, capsys) -> None:
    """``docker info --format '{{.Swarm.LocalNodeState}}'`` (``active`` in a swarm, else ``inactive``),
    ``{{.Swarm.NodeID}}``, ``{{.Swarm.ControlAvailable}}`` (a Raft voter is Docker's manager)."""
    member = {
        "node": {"name": "n1", "advertise_addr": "10.0.0.1"},
        "daemon": {"pid": 1, "version": "9.9.9"},
        "cluster": {"ready": True, "node_id": "abc", "raft_role": "voter", "cluster_id": "c1", "nodes": 3,
                    "voters": ["a", "b", "c"]},
    }  # fmt: skip
    monkeypatch.setattr(cli_cluster, "status_view", lambda client: member)
    template = (
        "{{.Swarm.LocalNodeState}} {{.Swarm.NodeID}} {{.Swarm.NodeAddr}} {{.Swarm.ControlAvailable}} "
        "{{.Swarm.Cluster.ID}} {{.Swarm.Nodes}} {{.Swarm.Managers}} {{.ServerVersion}} {{.Name}}"
    )
    assert main(["info", "--format", template]) == 0
    assert capsys.readouterr().out == "active abc 10.0.0.1 true c1 3 3 9.9.9 n1\n"
    monkeypatch.setattr(cli_cluster, "status_view", lambda client: {**member, "cluster": None})
    assert main(["info", "--format", "{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}"]) == 0
    assert capsys.readouterr().out == "inactive false\n"
