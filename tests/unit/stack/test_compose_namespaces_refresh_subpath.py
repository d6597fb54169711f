"""Compose gaps of session 50, each as Compose and Docker define it: ``pid``/``ipc``/``uts`` (were ignored
with a warning: a monitoring agent saw its container's processes only), the refresh pull policies
(``daily``, ``weekly``, ``every_<duration>``: were read as ``missing``), ``volume.subpath`` (was refused:
now mounted, and a node whose engine is older than API 1.45 fails the task saying so) and a host-network
service's ``expose`` ports (were unknown to the scheduler: two tasks on one node bound them twice)."""

from __future__ import annotations

from typing import Any

import pytest

from p2porch.agent.docker_executor import DockerExecutor
from p2porch.agent.dockerspec import create_request, engine_options, subpath_error
from p2porch.agent.model import KIND_SIDECAR, MemberSpec, MountSpec, TaskAssignment
from p2porch.engine.client import NotFound
from p2porch.errors import ConfigError
from p2porch.model import Node, ServiceSpec, parse_mount
from p2porch.model.container_opts import ContainerOptions, refresh_due, refresh_interval_s
from p2porch.scheduler import TaskRequest, build_node_infos, schedule

from .compose_text import load, refusal, spec_of

DAY = 86400.0


def test_pid_host_is_the_nodes_pid_namespace_as_docker_run_pid_host():
    definition = load(
        """
        services:
          node-exporter:
            image: prom/node-exporter
            pid: host
            network_mode: host
          app:
            image: app
            ipc: shareable
            uts: host
          worker:
            image: app
            ipc: private
        """
    )
    exporter = spec_of(definition, "node-exporter")
    assert exporter["container"] == {"pid_mode": "host"}
    assert spec_of(definition, "app")["container"] == {"ipc_mode": "shareable", "uts_mode": "host"}
    assert spec_of(definition, "worker")["container"] == {"ipc_mode": "private"}
    assert not any("pid" in w or "ipc" in w or "uts" in w for w in definition.warnings)
    assert engine_options({"pid_mode": "host", "ipc_mode": "host", "uts_mode": "host"}) == (
        {},
        {"PidMode": "host", "IpcMode": "host", "UTSMode": "host"},
    )
    task = TaskAssignment("t1", "s-exp", "s1", 1, "n1", "prom/node-exporter", options=exporter["container"])
    assert create_request(task)[1]["HostConfig"]["PidMode"] == "host"


@pytest.mark.parametrize(
    ("key", "value"),
    [("pid", "container:legacy"), ("uts", "container:x"), ("uts", "service:db")],
)
def test_another_containers_namespace_is_ignored_with_a_warning_naming_it(key, value):
    """As before session 50 (review r50b): a file that loaded still loads, the key ignored with a warning
    (``pid``/``ipc: service:X`` join X's task group since session 51: test_compose_namespace_joins.py)."""
    definition = load(f"services: {{db: {{image: db}}, beyla: {{image: beyla, {key}: '{value}'}}}}")
    assert not {"pid_mode", "ipc_mode", "uts_mode"} & set(spec_of(definition, "beyla").get("container", {}))
    warnings = "\n".join(definition.warnings)
    assert f"ignoring {key}: {value} (service beyla): a task cannot join another" in warnings


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("services: {a: {image: a, pid: private}}", "services.a.pid: expected host"),
        ("services: {a: {image: a, uts: private}}", "services.a.uts: expected host"),
        ("services: {a: {image: a, ipc: sometimes}}", "services.a.ipc: expected host, private"),
        ("services: {a: {image: a, uts: host, hostname: web}}", "services.a.hostname: a container in the"),
    ],
)
def test_a_namespace_docker_does_not_take_is_refused_naming_the_key(text, field):
    assert field in refusal(text)


def test_service_create_takes_the_namespaces_in_container_options():
    options = ContainerOptions.from_dict({"pid": "host", "ipc": "none"})
    assert options.to_dict() == {"pid_mode": "host", "ipc_mode": "none"}
    with pytest.raises(ConfigError, match="container.pid: expected host"):
        ContainerOptions.from_dict({"pid": "service:x"})


@pytest.mark.parametrize(
    ("policy", "interval"),
    [
        ("daily", DAY),
        ("weekly", 7 * DAY),
        ("every_12h", DAY / 2),
        ("every_1w2d", 9 * DAY),
        ("every_90s", 90.0),
    ],
)
def test_refresh_policies_are_read_as_compose_reads_them(policy, interval):
    assert refresh_interval_s(policy) == interval
    assert ContainerOptions.from_dict({"pull_policy": policy}).pull_policy == policy
    assert not refresh_due(policy, 1000.0, 1000.0 + interval)  # not older than the interval
    assert refresh_due(policy, 1000.0, 1000.0 + interval + 1)
    assert refresh_due(policy, 0.0, 1000.0)  # never tagged (unknown): old, as Compose's zero time


def test_a_refresh_interval_of_nothing_is_refused_naming_the_key():
    assert "services.a.pull_policy: 'every_0s'" in refusal("services: {a: {image: a, pull_policy: every_0s}}")


class Images:
    """An engine holding ``present`` images, each last tagged at ``tagged`` (an RFC 3339 time)."""

    endpoint = type("Local", (), {"socket_path": "/run/docker.sock"})()  # the agent's host and clock

    def __init__(self, tagged: str, *present: str) -> None:
        self.tagged, self.present, self.pulls = tagged, set(present), []

    def inspect_image(self, ref: str) -> dict[str, Any]:
        if ref not in self.present:
            raise NotFound(f"No such image: {ref}", status=404)
        return {"Id": "sha256:x", "Metadata": {"LastTagTime": self.tagged}}

    def pull(self, repository: str, tag: str, auth_header: Any = None) -> Any:
        self.pulls.append(f"{repository}:{tag}")
        self.present.add(f"{repository}:{tag}")
        return _Stream([{"status": "Downloaded"}])


class _Stream(list):
    def close(self) -> None:
        pass


NOW = 1_800_000_000.0  # 2027-01-15T08:00:00Z


async def test_a_daily_policy_pulls_an_image_pulled_more_than_a_day_ago():
    old = Images("2027-01-14T07:59:59.123456789Z", "app:1")  # a day and a second before NOW
    assert await DockerExecutor(old, clock=lambda: NOW)._ensure_image("app:1", "daily") == ""  # type: ignore[arg-type]
    assert old.pulls == ["app:1"]
    fresh = Images("2027-01-15T07:00:00Z", "app:1")  # an hour ago
    assert await DockerExecutor(fresh, clock=lambda: NOW)._ensure_image("app:1", "daily") == ""  # type: ignore[arg-type]
    assert fresh.pulls == []
    never = Images("0001-01-01T00:00:00Z", "app:1")  # Docker's zero time: never tagged
    await DockerExecutor(never, clock=lambda: NOW)._ensure_image("app:1", "every_12h")  # type: ignore[arg-type]
    assert never.pulls == ["app:1"]
    absent = Images("", "other:1")
    await DockerExecutor(absent, clock=lambda: NOW)._ensure_image("app:1", "weekly")  # type: ignore[arg-type]
    assert absent.pulls == ["app:1"]


def test_a_volume_subpath_is_the_engines_volume_subpath():
    definition = load(
        """
        services:
          web:
            image: nginx
            volumes: [{type: volume, source: data, target: /data, volume: {subpath: tenants/a}}]
        volumes: {data: {}}
        """
    )
    mount = spec_of(definition, "web")["mounts"][0]
    assert mount["subpath"] == "tenants/a"
    spec = MountSpec("volume", "app_data", "/data", subpath="tenants/a")
    task = TaskAssignment("t1", "app-web", "s1", 1, "n1", "nginx", mounts=(spec,))
    assert create_request(task)[1]["HostConfig"]["Mounts"][0]["VolumeOptions"] == {"Subpath": "tenants/a"}
    assert parse_mount("type=volume,source=v,target=/d,volume-subpath=x/y").subpath == "x/y"


def subpath_file(subpath: str) -> str:
    """A file whose service ``web`` mounts ``subpath`` of the named volume ``data``."""
    return f"""
        services:
          web:
            image: nginx
            volumes: [{{type: volume, source: data, target: /data, volume: {{subpath: '{subpath}'}}}}]
        volumes: {{data: {{}}}}
        """


@pytest.mark.parametrize(
    ("subpath", "field"),
    [("../other", "subpath"), ("/abs", "subpath"), ("a/../../b", "subpath")],
)
def test_a_subpath_outside_the_volume_is_refused(subpath, field):
    message = refusal(subpath_file(subpath))
    assert f"services.web.volumes[0].volume.subpath: {subpath!r} must be a relative path inside" in message
    with pytest.raises(ConfigError, match="only applies to type=volume"):
        parse_mount("type=bind,source=/x,target=/d,volume-subpath=a")


def test_an_engine_older_than_api_1_45_fails_the_task_naming_the_subpath():
    """Docker 20.10 (API 1.41) ignores VolumeOptions.Subpath and would mount the whole volume."""
    mount = MountSpec("volume", "app_data", "/data", subpath="tenant-a")
    task = TaskAssignment("t1", "app-web", "s1", 1, "n1", "nginx", mounts=(mount,))
    error = subpath_error(task, (1, 41))
    assert error == (
        "volume app_data mounted at /data with subpath 'tenant-a' needs Docker Engine API 1.45 (Docker 26.0) "
        "or later; this node's engine speaks 1.41"
    )
    assert subpath_error(task, (1, 45)) == ""
    side = MemberSpec("proxy", KIND_SIDECAR, "envoy", mounts=(mount,))
    grouped = TaskAssignment("t1", "app-web", "s1", 1, "n1", "nginx", members=(side,))
    assert "subpath 'tenant-a'" in subpath_error(grouped, (1, 43))
    assert subpath_error(TaskAssignment("t1", "app-web", "s1", 1, "n1", "nginx"), (1, 41)) == ""


async def test_the_executor_refuses_the_start_before_pulling_anything():
    engine = Images("", "nginx")
    engine.version = (1, 41)  # type: ignore[attr-defined]
    mount = MountSpec("volume", "app_data", "/data", subpath="tenant-a")
    task = TaskAssignment("t1", "app-web", "s1", 1, "n1", "nginx", mounts=(mount,))
    outcome = await DockerExecutor(engine).start(task)  # type: ignore[arg-type]
    assert outcome.container is None and "needs Docker Engine API 1.45" in outcome.error
    assert engine.pulls == []


def test_a_host_network_services_exposed_ports_are_bound_on_its_node():
    """Declared by ``expose`` or ``ports``, a port a host-network task binds is known to the scheduler: at
    most one such task a node. A port the file declares neither way stays unknown (docs/stack.md)."""
    definition = load(
        """
        services:
          node-exporter:
            image: prom/node-exporter
            network_mode: host
            expose: ["9100", "8000-8001/udp"]
            deploy: {replicas: 3}
        """
    )
    spec = spec_of(definition, "node-exporter")
    assert ServiceSpec.from_dict(spec).host_ports == (("tcp", 9100), ("udp", 8000), ("udp", 8001))
    nodes = build_node_infos([Node(f"n{i}", f"n{i}") for i in range(2)])  # type: ignore[arg-type]
    result = schedule([TaskRequest(f"t{i}", ServiceSpec.from_dict(spec)) for i in range(3)], nodes)
    assert sorted(result.assignments.values()) == ["n0", "n1"] and list(result.unschedulable) == ["t2"]
    off_host = load("services: {web: {image: nginx, expose: ['9100']}}")
    assert "publish" not in spec_of(off_host, "web") or not spec_of(off_host, "web")["publish"]


def test_service_create_mounts_a_volume_subpath_as_dockers_volume_subpath(capsys):
    from p2porch.cli.main import build_parser, main
    from p2porch.cli.service_spec_flags import spec_changes, validated_spec

    mount = "type=volume,source=v,target=/d,volume-subpath=t/a"
    changes = spec_changes(build_parser("service").parse_args(["service", "create", "--mount", mount, "img"]))
    assert validated_spec({"name": "w", "image": "img", **changes})["mounts"][0]["subpath"] == "t/a"
    bind = "type=bind,source=/x,target=/d,volume-subpath=a"
    assert main(["service", "create", "--name", "w", "--mount", bind, "img"]) == 2
    assert "--mount: mounts[0].subpath: only applies to type=volume" in capsys.readouterr().err
