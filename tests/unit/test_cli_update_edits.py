"""`service update --env-add/--env-rm/--publish-add/--publish-rm` (Docker's names) edit the service's
lists instead of replacing them, and send the whole list at the version read (compare-and-set). They
did not exist: `--env-add A=1 web` was "unrecognized arguments: --env-add web", exit 2."""

from __future__ import annotations

from typing import Any

import pytest

from p2porch.cli import service as cli_service
from p2porch.cli.main import main
from p2porch.errors import ConflictError

SPEC = {
    "env": {"A": "1", "B": "2"},
    "service_labels": {"tier": "front"},
    "labels": {"log": "json"},
    "constraints": ["node.labels.ssd==true", "node.role==voter"],
    "mounts": [{"type": "tmpfs", "target": "/cache", "source": "", "readonly": False, "volume_driver": ""}],
    "publish": [
        {"target": 80, "published": 8080, "protocol": "tcp"},
        {"target": 53, "published": 5353, "protocol": "udp"},
    ],
}


class Api:
    def __init__(self) -> None:
        self.posted: list[dict[str, Any]] = []

    def get(self, path: str, **_: Any) -> Any:
        assert path == "/services/web"
        return {"name": "web", "version": 7, "spec": SPEC}

    def post(self, path: str, body: Any = None) -> Any:
        assert path == "/services/web/update"
        self.posted.append(body)
        return {"id": "0123456789abcdef", "name": "web", "version": 8}


def update(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> tuple[int, Api]:
    api = Api()
    monkeypatch.setattr(cli_service, "client_for", lambda args: api)
    return main(["service", "update", "-d", *argv, "web"]), api


def test_env_add_and_rm_edit_the_variables_at_the_version_read(monkeypatch):
    code, api = update(["--env-add", "C=3", "--env-add", "A=9", "--env-rm", "B"], monkeypatch)
    assert code == 0
    assert api.posted == [{"env": ["A=9", "C=3"], "expected_version": 7}]


def test_publish_rm_by_target_as_docker_and_by_pair_and_publish_add(monkeypatch):
    code, api = update(["--publish-rm", "80", "--publish-add", "9090:90"], monkeypatch)
    assert code == 0
    assert api.posted[0]["publish"] == [SPEC["publish"][1], "9090:90"]
    code, api = update(["--publish-rm", "5353:53/udp", "--if-version", "6"], monkeypatch)
    assert api.posted[0] == {"publish": [SPEC["publish"][0]], "expected_version": 6}  # the user's version


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--env-rm", "NOPE"], "--env-rm: the service has no variable 'NOPE'"),
        (["--env-add", "NOEQ"], "--env-add: expected KEY=VALUE"),
        (["--publish-rm", "81"], "no published port matches '81' (ports: 8080:80/tcp, 5353:53/udp)"),
        (["--publish-rm", "80/udp"], "no published port matches '80/udp'"),
        (["--publish-rm", "x"], "is not TARGET[/PROTO]"),
        (["--publish-add", "99999:80"], "--publish-add.published: must be at most 65535"),
        (["--env", "A=1", "--env-add", "B=2"], "--env replaces the whole list"),
        (["--constraint-rm", "node.name==n1"], "--constraint-rm: the service has no constraint"),
        (["--constraint-add", "garbage"], "--constraint-add: 'garbage' has no == or != operator"),
        (["--constraint", "node.name==n1", "--constraint-add", "x==y"], "--constraint replaces the whole"),
        (["--mount-rm", "/nope"], "--mount-rm: no mount at '/nope' (targets: /cache)"),
        (["--mount-add", "type=bogus,target=/x"], "--mount-add.type: must be one of"),
    ],
)
def test_bad_edits_are_usage_errors_and_nothing_is_sent(argv, message, monkeypatch, capsys):
    code, api = update(argv, monkeypatch)
    assert code == 2 and api.posted == []
    assert message in capsys.readouterr().err


def test_constraint_and_mount_edits_as_docker(monkeypatch):
    """``--constraint-add/--constraint-rm`` (compared as parsed: Swarm's manager is voter) and
    ``--mount-add/--mount-rm TARGET``; they were unrecognized arguments."""
    argv = ["--constraint-rm", "node.role == manager", "--constraint-add", "node.name!=n2"]
    code, api = update(
        [*argv, "--mount-rm", "/cache", "--mount-add", "type=volume,source=d,target=/d"], monkeypatch
    )
    assert code == 0
    assert api.posted == [
        {
            "constraints": ["node.labels.ssd==true", "node.name!=n2"],
            "mounts": ["type=volume,source=d,target=/d"],
            "expected_version": 7,
        }
    ]


def test_update_rollback_is_service_rollback_as_docker(monkeypatch, capsys):
    """``docker service update --rollback S``; it was "ambiguous option: --rollback could match
    --rollback-parallelism, ..." (exit 2)."""
    posted: list[str] = []

    class Rollback(Api):
        def post(self, path: str, body: Any = None) -> Any:
            posted.append(path)
            return {"id": "0123456789abcdef", "name": "web", "version": 9, "changed": ["image"]}

    monkeypatch.setattr(cli_service, "client_for", lambda args: Rollback())
    assert main(["service", "update", "--rollback", "-d", "web"]) == 0
    out = capsys.readouterr()
    assert posted == ["/services/web/rollback"] and out.out == "web\n"  # the SERVICE given, as Docker's
    assert out.err == ""  # -d: nothing more, as Docker's
    code, api = update(["--replicas", "2"], monkeypatch)
    assert code == 0 and api.posted == [{"replicas": 2}]  # --rollback is no spec field


def test_label_add_and_rm_edit_the_service_labels_and_container_label_ones_the_containers(
    monkeypatch, capsys
):
    """The third user walk: Swarm's ``service update --label-add/--label-rm`` (the service's labels) and
    ``--container-label-add/--container-label-rm`` were unrecognized arguments."""
    code, api = update(["--label-add", "team=a", "--label-add", "flag", "--label-rm", "tier"], monkeypatch)
    assert code == 0
    assert api.posted == [{"service_labels": ["team=a", "flag="], "expected_version": 7}]
    code, api = update(["--container-label-add", "c=1", "--container-label-rm", "log"], monkeypatch)
    assert api.posted == [{"labels": ["c=1"], "expected_version": 7}]
    code, api = update(["--label-rm", "nope"], monkeypatch)
    assert code == 2 and api.posted == []
    assert "--label-rm: the service has no label 'nope'" in capsys.readouterr().err
    code, api = update(["--label", "x=1", "--label-add", "y=2"], monkeypatch)
    assert code == 2 and "--label replaces the whole list" in capsys.readouterr().err


class RacedApi(Api):
    """The service changes between each of the first ``races`` reads and the update (the leader's
    bookkeeping, another user's update): the API refuses the update at the version read, as it does."""

    def __init__(self, races: int) -> None:
        super().__init__()
        self.races, self.version, self.env = races, 7, dict(SPEC["env"])

    def get(self, path: str, **_: Any) -> Any:
        assert path == "/services/web"
        return {"name": "web", "version": self.version, "spec": {**SPEC, "env": dict(self.env)}}

    def post(self, path: str, body: Any = None) -> Any:
        self.posted.append(body)
        if self.races:
            self.races -= 1
            self.version += 1
            self.env["D"] = str(self.version)  # another user's change
        if body["expected_version"] != self.version:
            raise ConflictError(f"service web is at version {self.version}", field="expected_version")
        return {"id": "0123456789abcdef", "name": "web", "version": self.version + 1}


def raced(argv: list[str], races: int, monkeypatch: pytest.MonkeyPatch) -> tuple[int, RacedApi]:
    api = RacedApi(races)
    monkeypatch.setattr(cli_service, "client_for", lambda args: api)
    return main(["service", "update", "-d", *argv, "web"]), api


def test_an_edit_whose_service_changed_meanwhile_is_read_edited_and_sent_again(monkeypatch):
    """Main sent the version read and stopped at the 409: "changed since you read it" for a version the
    user never gave, whenever the leader wrote the service between the CLI's read and its update."""
    code, api = raced(["--env-add", "C=3"], 1, monkeypatch)
    assert code == 0
    assert api.posted == [
        {"env": ["A=1", "B=2", "C=3"], "expected_version": 7},
        {"env": ["A=1", "B=2", "D=8", "C=3"], "expected_version": 8},  # the other change kept
    ]


def test_an_edit_is_redone_five_times_at_most_and_never_with_if_version(monkeypatch, capsys):
    code, api = raced(["--env-add", "C=3"], 5, monkeypatch)
    assert code == 1 and len(api.posted) == 5
    assert "version 12" in capsys.readouterr().err
    code, api = raced(["--env-add", "C=3", "--if-version", "7"], 1, monkeypatch)
    assert code == 1 and len(api.posted) == 1  # the user's own condition: its conflict is the answer
