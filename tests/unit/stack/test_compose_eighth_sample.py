"""Constructs of the eighth real-world sample (docs/stack.md, "Eighth sample"), each reproduced by a
minimal hand-written file: services that share a VPN container's network namespace (``network_mode:
service:gluetun``, the *arr stacks of home labs) and each mount their own directory at the same path
(``/config``). They run in the VPN service's task as sidecars, which share the task's mounts; the second
``/config`` was refused ("mounted differently in 'gluetun'"). Each container now has its own mount there,
as each Compose container has its own volumes. And a Swarm stack's service reaching another by its Swarm
name, ``<stack>_<service>`` (``DB_HOST: quiz-stack_database``), which did not resolve."""

from __future__ import annotations

import textwrap

import dns.message
import dns.rcode
import pytest

from p2porch.agent.dockerspec import member_create_request
from p2porch.agent.model import KIND_SIDECAR, MemberSpec, MountSpec, TaskAssignment
from p2porch.control.stack_plan import named_volumes
from p2porch.dns.resolver import FORWARD, Resolver
from p2porch.dns.zone import TaskEntry, ZoneData
from p2porch.errors import ConfigError
from p2porch.member.views import group_members
from p2porch.model import ServiceSpec
from p2porch.stack import load_stack, stack_dns_aliases
from p2porch.stack.resolve import ComposeFile

ARR_STACK = """
volumes:
  network_nas:
    driver_opts: {type: cifs, o: "username=u,password=p", device: "//10.0.0.5/share"}
services:
  gluetun:
    image: qmcgaw/gluetun
    volumes: [/srv/arr/gluetun:/gluetun]
    ports: ["8085:8085", "8989:8989"]
  qbittorrent:
    image: lscr.io/linuxserver/qbittorrent
    network_mode: "service:gluetun"
    volumes: [/srv/arr/qbittorrent:/config, "network_nas:/share/"]
  sonarr:
    image: lscr.io/linuxserver/sonarr:latest
    network_mode: "service:gluetun"
    volumes: [/srv/arr/sonarr/data:/config, "network_nas:/share/", "sonarr-cache:/cache"]
  radarr:
    image: lscr.io/linuxserver/radarr:latest
    network_mode: "service:gluetun"
    volumes: [/srv/arr/radarr/data:/config]
"""


def _load(text: str, stack: str = "arr"):
    return load_stack(stack, [ComposeFile("/srv/arr/compose.yaml", textwrap.dedent(text), "/srv/arr")], None,
                      environ={})  # fmt: skip


def _mounts(entries) -> dict[str, str]:
    return {m["target"]: m["source"] for m in entries}


def test_services_in_one_network_namespace_each_mount_their_own_directory_at_one_path():
    """Josephfell/Docker-Compose's Arr-stack: qbittorrent, sonarr and radarr run in gluetun's namespace,
    each with its own ``/config``. Refused before ("services.sonarr.volumes: /config is mounted
    differently in 'gluetun'"); now the task shares what is the same (the NAS volume) and each sidecar
    has its own ``/config``."""
    definition = _load(ARR_STACK.replace("sonarr-cache:/cache", "/srv/arr/cache:/cache"))
    (gluetun,) = definition.services
    spec = gluetun.spec
    assert ServiceSpec.from_dict(spec).to_dict() == spec
    assert _mounts(spec["mounts"]) == {
        "/gluetun": "/srv/arr/gluetun",
        "/config": "/srv/arr/qbittorrent",  # the first to mount /config: shared, as before
        "/share/": "arr_network_nas",
        "/cache": "/srv/arr/cache",
    }
    sidecars = {c["name"]: c for c in spec["sidecars"]}
    assert "mounts" not in sidecars["qbittorrent"]  # its mounts are the task's: no change for it
    assert _mounts(sidecars["sonarr"]["mounts"]) == {"/config": "/srv/arr/sonarr/data"}
    assert _mounts(sidecars["radarr"]["mounts"]) == {"/config": "/srv/arr/radarr/data"}
    assert not [w for w in definition.warnings if "mounted" in w]


def test_a_sidecars_own_volume_is_a_named_volume_of_the_stack():
    text = ARR_STACK.replace(', "sonarr-cache:/cache"', "").replace(
        "/srv/arr/radarr/data:/config", "network_nas:/config"
    )
    (gluetun,) = _load(text).services
    spec = ServiceSpec.from_dict(gluetun.spec)
    assert [m.source for m in spec.sidecars[2].mounts] == ["arr_network_nas"]  # radarr's /config
    assert named_volumes({"arr-gluetun": spec}) == [{"name": "arr_network_nas", "services": ["arr-gluetun"]}]


def test_the_agent_creates_a_sidecar_with_its_own_mount_in_place_of_the_tasks():
    """The engine spec of sonarr: the task's mounts, with its own ``/config`` instead of the task's."""
    spec = ServiceSpec.from_dict(
        _load(ARR_STACK.replace("sonarr-cache:/cache", "/srv/arr/c:/c")).services[0].spec
    )
    members = {m.name: m for m in group_members(spec)}
    assert members["sonarr"].mounts == (
        MountSpec("bind", "/srv/arr/sonarr/data", "/config", create_host_path=True),
    )
    task = TaskAssignment(
        task_id="t1",
        service_name="arr-gluetun",
        service_id="s1",
        slot=1,
        node_name="n1",
        image="qmcgaw/gluetun",
        mounts=(
            MountSpec("bind", "/srv/arr/gluetun", "/gluetun"),
            MountSpec("bind", "/srv/arr/qb", "/config"),
        ),
    )
    _, body = member_create_request(task, members["sonarr"], "main-id")
    mounts = {m["Target"]: m["Source"] for m in body["HostConfig"].get("Mounts", [])}
    binds = body["HostConfig"].get("Binds", [])
    assert mounts == {"/gluetun": "/srv/arr/gluetun"}
    assert binds == ["/srv/arr/sonarr/data:/config:rw"]  # the short syntax's bind: the engine creates it
    _, plain = member_create_request(task, MemberSpec("qbittorrent", KIND_SIDECAR, "q"), "main-id")
    assert {m["Target"]: m["Source"] for m in plain["HostConfig"]["Mounts"]}["/config"] == "/srv/arr/qb"


def test_a_group_containers_own_mounts_round_trip_and_are_absent_when_unused():
    base = {"name": "web", "image": "nginx", "sidecars": [{"name": "log", "image": "busybox"}]}
    assert "mounts" not in ServiceSpec.from_dict(base).to_dict()["sidecars"][0]  # template hash unchanged
    own = {
        "name": "log",
        "image": "busybox",
        "mounts": ["type=bind,source=/var/log/web,target=/logs,readonly"],
    }
    spec = ServiceSpec.from_dict({**base, "sidecars": [own]})
    assert spec.to_dict()["sidecars"][0]["mounts"] == [
        {"type": "bind", "source": "/var/log/web", "target": "/logs", "readonly": True, "volume_driver": ""}
    ]
    assert ServiceSpec.from_dict(spec.to_dict()) == spec
    twice = {**own, "mounts": ["type=tmpfs,target=/x", "type=volume,source=v,target=/x"]}
    with pytest.raises(ConfigError) as exc:
        ServiceSpec.from_dict({**base, "sidecars": [twice]})
    assert exc.value.field == "sidecars[0].mounts[1].target"


QUIZ_STACK = """
services:
  backend:
    image: marcdroit/quiz-backend:latest
    environment: {DB_HOST: quiz-stack_database}
  database:
    image: marcdroit/postgres:latest
"""


def test_a_swarm_stack_service_is_answered_under_its_swarm_name():
    """114droit/react_app_container_ha's stack, deployed as ``quiz-stack``: the backend reaches the
    database at ``quiz-stack_database``, the name Swarm gives it. p2porch names it ``quiz-stack-database``
    (a DNS label) and answered ``database`` in the stack; the Swarm name was forwarded (NXDOMAIN). It is a
    name of the service now, as ``database.quiz-stack`` is (asked with the cluster domain the search list
    appends, ``p2p``)."""
    services: dict[str, list[TaskEntry]] = {}
    for address, service in enumerate(_load(QUIZ_STACK, "quiz-stack").services, start=2):
        entries = [TaskEntry(1, f"10.240.1.{address}")]
        services[service.spec["name"]] = entries
        for alias in stack_dns_aliases(service.spec["labels"]):
            services.setdefault(alias, entries)
    resolver = Resolver(ZoneData(services=services))

    def ask(name: str) -> list[str]:
        reply = resolver.resolve(dns.message.make_query(name, "A").to_wire())
        assert reply is not FORWARD, name
        message = dns.message.from_wire(reply)
        assert message.rcode() == dns.rcode.NOERROR, name
        return [rd.address for rrset in message.answer for rd in rrset]

    assert ask("quiz-stack_database.p2p") == ask("quiz-stack-database.p2p") == ["10.240.1.3"]
    assert ask("quiz-stack_backend.p2p") == ask("backend.quiz-stack.p2p") == ["10.240.1.2"]
