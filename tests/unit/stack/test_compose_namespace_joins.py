"""``pid: service:X`` and ``ipc: service:X`` (session 51; were ignored with a warning): both containers must
be on one node, so the service joins X's task group (docs/task-groups.md). A member of the group
(``network_mode: service:X``) shares the main container's PID/IPC namespace; a service that shares only
those namespaces is co-scheduled into X's group as a sidecar (Kubernetes' ``shareProcessNamespace`` pod),
its Compose name an alias of X's tasks on its networks. Where that cannot be done the key stays ignored
with a warning saying why."""

from __future__ import annotations

import pytest

from p2porch.agent.dockerspec import create_request, member_create_request
from p2porch.agent.model import TaskAssignment
from p2porch.errors import ConfigError
from p2porch.member.views import group_members
from p2porch.model import ServiceSpec
from p2porch.model import spec_fields as F

from .compose_text import load, spec_of


def engine_bodies(spec: dict) -> tuple[dict, list[dict]]:
    """The create bodies of the task's main container and of each member (main container id ``m1``)."""
    members = group_members(ServiceSpec.from_dict(spec))
    options = spec.get("container", {})
    task = TaskAssignment("t1", spec["name"], "s1", 1, "n1", spec["image"], members=members, options=options)
    return create_request(task)[1], [member_create_request(task, m, "m1")[1] for m in members]


def test_a_certbot_sharing_haproxys_pid_namespace_runs_in_its_task():
    """jacob-pro/certbot-haproxy's documented file: the renewal signals HAProxy's PID 1 to reload."""
    definition = load(
        """
        services:
          haproxy:
            image: haproxy:2.3-alpine
            ports: ["80:80", "443:443"]
            volumes: ["letsencrypt:/etc/letsencrypt:ro"]
          certbot-haproxy:
            pid: "service:haproxy"
            image: ghcr.io/jacob-pro/certbot-haproxy:latest
            volumes: ["letsencrypt:/etc/letsencrypt:rw"]
            depends_on: [haproxy]
            environment: [EMAIL=ops@example.com]
        volumes:
          letsencrypt:
        """
    )
    assert [s.short_name for s in definition.services] == ["haproxy"]
    haproxy = spec_of(definition, "haproxy")
    (certbot,) = haproxy["sidecars"]
    assert certbot["pid"] == "main" and certbot["env"] == {"EMAIL": "ops@example.com"}
    assert certbot["mounts"][0]["readonly"] is False  # its own rw mount where HAProxy's is read-only
    assert haproxy["networks"] == [{"target": "app_default", "aliases": ["certbot-haproxy"]}]
    warnings = "\n".join(definition.warnings)
    assert "pid: service:haproxy (service certbot-haproxy): runs in haproxy's task as a sidecar" in warnings
    assert "ignoring pid" not in warnings
    main, (member,) = engine_bodies(haproxy)
    assert member["HostConfig"]["PidMode"] == "container:m1"
    assert member["HostConfig"]["NetworkMode"] == "container:m1"
    assert "PidMode" not in main["HostConfig"] and "IpcMode" not in main["HostConfig"]


def test_a_member_of_the_group_joins_the_namespaces_it_names():
    definition = load(
        """
        services:
          app: {image: app, ipc: host}
          beyla:
            image: grafana/beyla
            network_mode: "service:app"
            pid: "service:app"
            privileged: true
          shm:
            image: reader
            network_mode: "service:app"
            ipc: "service:app"
          web: {image: web}
          tool:
            image: tool
            network_mode: "service:web"
            ipc: "service:web"
        """
    )
    app = spec_of(definition, "app")
    assert [(s["name"], s.get("pid"), s.get("ipc")) for s in app["sidecars"]] == [
        ("beyla", "main", None),
        ("shm", None, "main"),
    ]
    assert "ignoring" not in "\n".join(definition.warnings)
    main, (beyla, shm) = engine_bodies(app)
    assert beyla["HostConfig"]["PidMode"] == "container:m1" and beyla["HostConfig"]["Privileged"] is True
    assert shm["HostConfig"]["IpcMode"] == "container:m1" and "PidMode" not in shm["HostConfig"]
    assert main["HostConfig"]["IpcMode"] == "host"  # its own mode kept (a host namespace is joinable)
    web_main, (tool,) = engine_bodies(spec_of(definition, "web"))
    assert web_main["HostConfig"]["IpcMode"] == "shareable"  # the engine's default may be private
    assert tool["HostConfig"]["IpcMode"] == "container:m1"


@pytest.mark.parametrize(
    ("services", "key", "why"),
    [
        (  # its network is another service's task
            "{a: {image: a}, b: {image: b}, s: {image: s, network_mode: 'service:a', pid: 'service:b'}}",
            "pid: service:b",
            "it runs in a's task (network_mode), not beside b",
        ),
        (
            "{a: {image: a}, b: {image: b}, s: {image: s, pid: 'service:a', ipc: 'service:b'}}",
            "pid: service:a",
            "the pid and ipc namespaces of two services cannot both be joined",
        ),
        (  # one network namespace: one listener per port
            "{a: {image: a, ports: ['80:80']}, s: {image: s, pid: 'service:a', ports: ['8080:80']}}",
            "pid: service:a",
            "its container port 80 is also a's",
        ),
        (
            "{a: {image: a}, b: {image: b, network_mode: 'service:a'}, s: {image: s, pid: 'service:b'}}",
            "pid: service:b",
            "b itself runs in a's task: point at that one",
        ),
        (  # others share its namespace: it owns a group
            "{a: {image: a}, s: {image: s, pid: 'service:a'}, t: {image: t, ipc: 'service:s'}}",
            "pid: service:a",
            "it has a task group of its own",
        ),
        (  # a keepalived/haproxy pair: the haproxy's own network and port mapping would be lost
            "{a: {image: a, network_mode: host}, s: {image: s, pid: 'service:a', ports: ['80:8080']}}",
            "pid: service:a",
            "a is on the host network: its task would put this service on its node's network",
        ),
        (
            "{a: {image: a, depends_on: {s: {condition: service_completed_successfully}}},"
            " s: {image: s, network_mode: 'service:a', pid: 'service:a'}}",
            "pid: service:a",
            "a waits for it to complete",
        ),
    ],
)
def test_a_namespace_that_cannot_be_joined_stays_ignored_saying_why(services, key, why):
    definition = load(f"services: {services}")
    warnings = "\n".join(definition.warnings)
    assert f"ignoring {key} (service s): {why}" in warnings


def test_a_joiner_on_a_network_the_target_is_not_on_deploys_on_its_own():
    """Review h51 6: folded, it lost metrics and its name there (only a warning): the join is refused."""
    definition = load(
        """
        services:
          app: {image: app, networks: [front]}
          agent: {image: agent, pid: "service:app", networks: [front, metrics]}
        networks: {front: {}, metrics: {}}
        """
    )
    assert "sidecars" not in spec_of(definition, "app")
    assert [n["target"] for n in spec_of(definition, "agent")["networks"]] == ["app_front", "app_metrics"]
    warnings = "\n".join(definition.warnings)
    assert "(service agent): it is on app_metrics, which app is not on" in warnings
    assert "runs in app's task" not in warnings


def test_the_group_containers_pid_and_ipc_are_spec_version_6_and_only_main():
    spec = ServiceSpec.from_dict(
        {"name": "d", "image": "d", "sidecars": ["name=p,image=p,pid=main,ipc=main"]}
    )
    assert F.SPEC_VERSION >= 6
    assert F.used_above(spec, 5) == {"sidecars[0].pid": 6, "sidecars[0].ipc": 6}
    assert spec.to_dict()["sidecars"] == [{"name": "p", "image": "p", "pid": "main", "ipc": "main"}]
    plain = ServiceSpec.from_dict({"name": "d", "image": "d", "sidecars": ["name=p,image=p"]})
    assert "pid" not in plain.to_dict()["sidecars"][0]
    with pytest.raises(ConfigError, match=r"sidecars\[0\]\.pid: expected 'main'"):
        ServiceSpec.from_dict({"name": "d", "image": "d", "sidecars": ["name=p,image=p,pid=host"]})
    with pytest.raises(ConfigError, match=r"init_containers\[0\]\.ipc: an init container runs before"):
        ServiceSpec.from_dict({"name": "d", "image": "d", "init_containers": ["name=p,image=p,ipc=main"]})
