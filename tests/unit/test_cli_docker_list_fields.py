"""Docker's list ``--format`` fields p2porch lacked (``service ps`` ``{{.Ports}}``, ``secret ls``
``{{.Driver}}``/``{{.Labels}}``, ``network ls`` ``{{.IPv4}}``/``{{.IPv6}}``/``{{.Labels}}``/
``{{.CreatedAt}}``),
the ``service inspect`` paths a Swarm user's scripts read, what ``service update|scale|rollback`` print,
and the SINCE of a task told to stop that still runs."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from p2porch.cli import network as cli_network
from p2porch.cli import secret as cli_secret
from p2porch.cli import service as cli_service
from p2porch.cli import service_read as cli_service_read
from p2porch.cli.docker_paths import docker_path
from p2porch.cli.goformat import render
from p2porch.cli.main import main
from p2porch.cli.service_rows import state_since, task_row
from p2porch.context import ENGINE_META_HOLD_S, LocalBoard
from p2porch.control.task_specs import task_host_ports
from p2porch.gossip.swim_output import MemberView
from p2porch.model import Service, ServiceSpec, Task
from p2porch.model.container import PortPublish

HOSTP = ServiceSpec(
    name="web",
    image="app:1",
    publish=(
        PortPublish(target=80, published=8090, mode="host"),
        PortPublish(target=53, published=5353, protocol="udp", host_ip="10.0.0.1", mode="host"),
        PortPublish(target=81, published=None, mode="host"),  # the engine picks: unknown here
        PortPublish(target=443, published=8443, mode="ingress"),  # the service's, not the task's
    ),
)


def test_a_tasks_ports_are_its_specs_host_mode_published_ports() -> None:
    task = Task("t1", "s1", 1, template_hash=HOSTP.template_hash())
    ports = task_host_ports(task, Service("s1", HOSTP))
    published = [(p["published"], p["target"], p["protocol"]) for p in ports]
    assert published == [(8090, 80, "tcp"), (5353, 53, "udp")]
    older = Task("t0", "s1", 1, template_hash=dataclasses.replace(HOSTP, image="app:0").template_hash())
    assert task_host_ports(older, Service("s1", HOSTP)) == []  # a spec no longer known: none claimed


TASK = {"node": "n1", "desired_state": "running", "state": "running", "state_at": 0.0, "error": ""}
TASK["message"] = ""


class TasksApi:
    def get(self, path: str, **_: Any) -> Any:
        if path.endswith("/usage"):
            return {}
        if path == "/services/web":
            return {"spec": {"name": "web", "image": "app:1"}}
        ports = [{"target": 80, "published": 8090, "protocol": "tcp"},
                 {"target": 53, "published": 5353, "protocol": "udp", "host_ip": "10.0.0.1"}]  # fmt: skip
        return [
            {**TASK, "id": "a1", "name": "web.1", "slot": 1, "image": "app:1", "ports": ports},
            {**TASK, "id": "b2", "name": "web.2", "slot": 2, "image": "app:1", "ports": []},
        ]


def test_service_ps_format_takes_dockers_ports(monkeypatch, capsys) -> None:
    monkeypatch.setattr(cli_service_read, "client_for", lambda args: TasksApi())
    assert main(["service", "ps", "web", "--format", "table {{.Name}}\\t{{.Ports}}"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "NAME      PORTS",  # docker/cli's tabwriter: a cell at least 10 wide, 3 of padding
        "web.1     *:8090->80/tcp,10.0.0.1:5353->53/udp",
        "web.2     ",  # Go pads a cell before an empty last one
    ]


class ObjectsApi:
    def get(self, path: str, **_: Any) -> Any:
        if path == "/networks":
            net = {"id": "n" * 20, "name": "back", "driver": "overlay", "scope": "cluster", "internal": False}
            return [{**net, "services": [], "labels": {"tier": "db", "a": "1"}, "created_at": 1796500862.5}]
        row = {"id": "s1", "name": "pw", "version": 1, "size": 3, "services": [], "created_at": 0}
        return [{**row, "updated_at": 0, "labels": {"env": "prod"}}]


@pytest.mark.parametrize(
    ("module", "argv", "out"),
    [
        (cli_secret, ["secret", "ls", "--format", "{{.Name}}|{{.Driver}}|{{.Labels}}"], "pw||env=prod"),
        (cli_secret, ["config", "ls", "--format", "{{.Name}} {{.Labels}}"], "pw env=prod"),
        (
            cli_network,
            ["network", "ls", "--format", "{{.Name}} {{.IPv4}} {{.IPv6}} {{.Labels}} {{.CreatedAt}}"],
            "back true false a=1,tier=db 2026-12-05 20:01:02.5 +0000 UTC",
        ),
    ],
)
def test_the_object_lists_take_dockers_other_fields(monkeypatch, capsys, module, argv, out) -> None:
    monkeypatch.setattr(module, "client_for", lambda args: ObjectsApi())
    assert main(argv) == 0
    assert capsys.readouterr().out.splitlines() == [out]


def test_config_ls_has_no_driver_as_dockers(capsys) -> None:
    """Docker's config list has no ``{{.Driver}}``: refused while parsing, naming ``--format`` (exit 1,
    as Docker's)."""
    assert main(["config", "ls", "--format", "{{.Driver}}"]) == 1
    assert "can't evaluate field Driver" in capsys.readouterr().err


VIEW = {
    "name": "web",
    "spec": {
        "mode": "replicated",
        "replicas": 3,
        "endpoint_mode": "dnsrr",
        "container": {"hostname": "{{.Service.Name}}-{{.Task.Slot}}"},
        "restart": {"condition": "on-failure", "max_attempts": 3},
        "update": {"failure_action": "rollback", "parallelism": 2, "order": "start-first"},
        "limit_cpu_nanos": 250_000_000,
        "reserve_memory_bytes": 16 << 20,
        "publish": [],
    },
}


@pytest.mark.parametrize(
    ("template", "out"),
    [
        ("{{.Spec.TaskTemplate.ContainerSpec.Hostname}}", "{{.Service.Name}}-{{.Task.Slot}}"),
        ("{{.Spec.EndpointSpec.Mode}}", "dnsrr"),
        ("{{json .Spec.EndpointSpec}}", '{"Mode":"dnsrr"}'),  # omitempty, as Docker's JSON
        ("{{.Endpoint.Spec.Mode}}", "dnsrr"),  # the fourth walk: "can't evaluate field Endpoint"
        ("{{json .Endpoint.Spec}}", '{"Mode":"dnsrr"}'),
        ("{{json .Spec.Mode}}", '{"Replicated":{"Replicas":3}}'),
        (
            "{{.Spec.TaskTemplate.RestartPolicy.Condition}} {{.Spec.TaskTemplate.RestartPolicy.MaxAttempts}}",
            "on-failure 3",
        ),  # fmt: skip
        ("{{.Spec.UpdateConfig.FailureAction}} {{.Spec.UpdateConfig.Parallelism}}", "rollback 2"),
        ("{{.Spec.UpdateConfig.Order}}", "start-first"),
        ("{{.Spec.TaskTemplate.Resources.Limits.NanoCPUs}}", "250000000"),
        ("{{.Spec.TaskTemplate.Resources.Reservations.MemoryBytes}}", str(16 << 20)),
    ],
)
def test_service_inspect_answers_a_swarm_users_paths(template: str, out: str) -> None:
    assert render(template, VIEW, docker_path) == out


def test_a_global_services_mode_is_dockers() -> None:
    view = {**VIEW, "spec": {**VIEW["spec"], "mode": "global"}}
    assert render("{{json .Spec.Mode}}", view, docker_path) == '{"Global":{}}'


class WritesApi:
    def __init__(self) -> None:
        self.posted: list[str] = []

    def post(self, path: str, body: Any = None) -> Any:
        self.posted.append(path)
        name = path.split("/")[2]
        return {"id": "0123456789abcdef", "name": "web", "version": 9, "changed": ["image"], "desired": 4,
                "mode": "replicated"} if name else {}  # fmt: skip

    def get(self, path: str, **_: Any) -> Any:
        return {"name": "web", "mode": "replicated", "spec": {"env": {}}}


@pytest.mark.parametrize(
    ("argv", "out"),
    [
        (["service", "update", "-d", "--image", "app:2", "0123"], "0123\n"),  # the SERVICE given, not an id
        (["service", "rollback", "-d", "web"], "web\n"),
        (["service", "update", "--rollback", "-d", "web"], "web\n"),
        (["service", "scale", "-d", "web=4"], "web scaled to 4\n"),
    ],
)
def test_writes_print_the_service_given_as_docker(monkeypatch, capsys, argv, out) -> None:
    api = WritesApi()
    monkeypatch.setattr(cli_service, "client_for", lambda args: api)
    assert main(argv) == 0
    assert capsys.readouterr().out == out and api.posted


def test_a_task_told_to_stop_shows_how_long_it_has_been_running() -> None:
    """The leader's stop write sets ``state_at``: a task still running shows the time since it started
    (Docker's ``Shutdown`` / ``Running 5 minutes ago``), every other task the time of its state."""
    stopping = {**TASK, "id": "a1", "name": "web.1", "desired_state": "shutdown", "state_at": 1000.0,
                "started_at": 400.0}  # fmt: skip
    assert state_since(stopping) == 400.0
    assert task_row(stopping)[3:5] == ["shutdown", "running"]
    assert state_since({**stopping, "desired_state": "running", "state_at": 500.0}) == 500.0
    assert state_since({**stopping, "state": "shutdown", "state_at": 1010.0}) == 1010.0
    assert state_since({**stopping, "started_at": 0.0}) == 1000.0  # never seen running: the stop's time


class OwnMetaGossip:
    """A GossipHandle's meta calls over members' wire metadata (the board's reads and its publish)."""

    name = "n1"

    def __init__(self) -> None:
        self.metas: dict[str, dict[str, Any]] = {"n1": {"t": 7}, "n2": {"e": "26.1.0"}, "n3": {"e": 3}}
        self.holds: list[float] = []

    def members(self) -> dict[str, Any]:
        return {name: MemberView(name, "", "alive", 1, meta) for name, meta in self.metas.items()}

    def set_own_meta(self, key: str, value: Any, *, hold_s: float = 0.0) -> None:
        self.holds.append(hold_s)  # (held or not, what the members read once it went out)
        self.metas[self.name] = {**self.metas[self.name], key: value}


def test_engine_versions_travel_in_gossip_metadata() -> None:
    """``node ls`` ENGINE VERSION: each node publishes its engine's version in its gossip metadata
    (``"e"``, the rest of its metadata kept) once its agent read ``docker info``; others read it there."""
    board = LocalBoard()
    board.publish_engine_version("27.5.1")  # before gossip runs: gossip starts with it
    assert board.engine_version == "27.5.1"
    gossip = OwnMetaGossip()
    board.gossip = gossip  # type: ignore[assignment]
    board.engine_version = ""
    board.publish_engine_version("27.5.1")
    assert gossip.metas["n1"] == {"t": 7, "e": "27.5.1"}
    assert board.engine_versions() == {"n1": "27.5.1", "n2": "26.1.0", "n3": ""}  # ill-typed: unknown
    board.publish_engine_version("27.5.1", "x86_64")  # node inspect's .Description.Platform.Architecture
    assert gossip.metas["n1"] == {"t": 7, "e": "27.5.1", "p": "x86_64"} and board.architecture == "x86_64"
    assert board.architectures() == {"n1": "x86_64", "n2": "", "n3": ""}
    assert gossip.holds == [ENGINE_META_HOLD_S] * 2  # no one waits for them: they ride with the next update
