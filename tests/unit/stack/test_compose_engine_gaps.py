"""Compose keys that were ignored or refused and now reach the engine as Compose and Docker define them
(h49): ``mem_swappiness`` (HostConfig.MemorySwappiness), ``pull_policy`` (when a node pulls the task's
image), ``--memory-swap`` on
``service create/update`` (what ``memswap_limit`` maps to) and ``network_mode: host`` (the node's network
namespace, was ignored: the tasks were on the cluster network)."""

from __future__ import annotations

import pytest

from p2porch.agent.dockerspec import create_request, engine_options
from p2porch.cli.main import build_parser, main
from p2porch.cli.service_spec_flags import spec_changes, validated_spec
from p2porch.errors import ConfigError, NotFoundError
from p2porch.member.views import task_assignment
from p2porch.model import ServiceSpec
from p2porch.model.spec import check_endpoint_ports
from p2porch.raft.fsm_networks import check_service_networks
from p2porch.raft.state import ClusterState

from .compose_text import load, refusal, spec_of


def test_mem_swappiness_reaches_the_engine_as_memory_swappiness():
    definition = load(
        """
        services:
          db: {image: postgres, mem_swappiness: 0}
          cache: {image: redis, mem_swappiness: "60"}
        """
    )
    assert spec_of(definition, "db")["container"] == {"mem_swappiness": 0}
    assert spec_of(definition, "cache")["container"] == {"mem_swappiness": 60}
    assert engine_options({"mem_swappiness": 0}) == ({}, {"MemorySwappiness": 0})
    assert not any("mem_swappiness" in w for w in definition.warnings)
    bad = refusal("services: {db: {image: postgres, mem_swappiness: 101}}")
    assert "services.db.mem_swappiness: expected a number from 0 to 100" in bad


@pytest.mark.parametrize(
    ("written", "policy", "warned"),
    [
        ("always", "always", False),
        ("never", "never", False),
        ("missing", None, False),  # the default: nothing stored
        ("if_not_present", None, False),  # Compose's old spelling of missing
        ("build", None, True),  # nothing is built here
        ("daily", "daily", False),  # refresh policies: the node pulls again past the interval
        ("weekly", "weekly", False),
        ("every_12h", "every_12h", False),
        ("refresh", None, True),  # the schema's word without an interval
    ],
)
def test_pull_policy_is_the_nodes_pull_policy(written, policy, warned):
    definition = load(f"services: {{web: {{image: nginx, pull_policy: {written}}}}}")
    container = spec_of(definition, "web").get("container", {})
    assert container.get("pull_policy") == policy
    assert any(f"pull_policy: {written}" in w for w in definition.warnings) == warned


def test_a_pull_policy_compose_does_not_know_is_refused_naming_the_key():
    message = refusal("services: {web: {image: nginx, pull_policy: sometimes}}")
    assert "services.web.pull_policy: expected always, never, missing" in message


def test_memory_swap_is_a_flag_of_service_create_and_update(capsys):
    argv = ["service", "create", "--name", "es", "--limit-memory", "1G", "--memory-swap", "2G", "img"]
    changes = spec_changes(build_parser("service").parse_args(argv))
    assert changes["container"] == {"memswap_limit": "2G"}
    assert validated_spec({"name": "es", "image": "img", **changes})["container"] == {
        "memswap_limit_bytes": 2 * 1024**3
    }
    update = build_parser("service").parse_args(["service", "update", "--memory-swap", "-1", "es"])
    assert spec_changes(update)["container"] == {"memswap_limit": "-1"}  # unlimited swap, as Docker's
    assert main(["service", "create", "--name", "es", "--memory-swap", "2G", "img"]) == 2
    assert "--memory-swap: container.memswap_limit: needs a memory limit" in capsys.readouterr().err


class _Task:
    task_id, service_id, slot, desired_state, state, spec_version = "t1", "s1", 1, "running", "assigned", 1
    node_id = "id1"
    started_at = 0.0  # not recorded running yet


def test_network_mode_host_is_the_nodes_network_namespace():
    """As ``docker run --network host``: the task's container joins its node's namespace, no overlay
    network, no virtual address (dnsrr), each port bound on the node by the task itself (host mode)."""
    definition = load(
        """
        services:
          agent:
            image: henrygd/beszel-agent
            network_mode: host
            container_name: beszel-agent
            ports: ["45876:45876", "8080:80", "53:53/udp"]
          web: {image: nginx}
        """
    )
    agent = spec_of(definition, "agent")
    assert agent["networks"] == [{"target": "host", "aliases": []}] and agent["endpoint_mode"] == "dnsrr"
    assert [(p["published"], p["target"], p["mode"], p["protocol"]) for p in agent["publish"]] == [
        (45876, 45876, "host", "tcp"),
        (80, 80, "host", "tcp"),  # 8080:80: the process binds 80 on the node, as Docker discards the map
        (53, 53, "host", "udp"),
    ]
    assert [n.key for n in definition.networks] == ["default"]  # web's only: the host network is no stack's
    warnings = "\n".join(definition.warnings)
    assert "host network (service agent): the tasks share their node's network namespace" in warnings
    assert "ports on the host network (service agent)" in warnings
    spec = ServiceSpec.from_dict(agent)
    assignment = task_assignment(_Task(), spec, "n1", "p2porch", "10.240.1.1", "p2p")
    _, body = create_request(assignment)
    host = body["HostConfig"]
    assert host["NetworkMode"] == "host" and "PortBindings" not in host and "ExposedPorts" not in body
    assert host["Dns"] == ["10.240.1.1"]  # it resolves the cluster's names through its node's DNS


def test_network_mode_host_beside_networks_keeps_the_networks_as_docker_stack_deploy_does():
    definition = load(
        "services: {web: {image: nginx, network_mode: host, networks: [back]}}\nnetworks: {back: {}}"
    )
    assert spec_of(definition, "web")["networks"] == [{"target": "app_back", "aliases": []}]
    assert any(w.startswith("ignoring network_mode (service web)") for w in definition.warnings)


def test_a_host_network_service_has_no_virtual_address_nor_ingress_port():
    """(A stack's ``endpoint_mode: vip`` beside it is dnsrr with a warning: test_host_network_edges.py.)"""
    base = {"name": "web", "image": "x", "networks": ["host"], "endpoint_mode": "dnsrr"}
    with pytest.raises(ConfigError, match=r"publish\[0\]: .* publish 80:80 with mode=host"):
        check_endpoint_ports(ServiceSpec.from_dict({**base, "publish": ["8080:80"]}))
    with pytest.raises(ConfigError, match="the host network is a task's only network and has no aliases"):
        ServiceSpec.from_dict({**base, "networks": ["host", "back"]})
    spec = check_endpoint_ports(
        ServiceSpec.from_dict({**base, "publish": [{"target": 80, "published": 80, "mode": "host"}]})
    )
    assert ServiceSpec.from_dict(spec.to_dict()) == spec


def test_the_host_network_always_exists_for_a_service():
    state = ClusterState()
    check_service_networks(state, ServiceSpec.from_dict({"name": "web", "image": "x", "networks": ["host"]}))
    with pytest.raises(NotFoundError):
        check_service_networks(
            state, ServiceSpec.from_dict({"name": "web", "image": "x", "networks": ["back"]})
        )


def test_joining_or_leaving_the_host_network_rolls_the_tasks():
    """Other network changes are policy, applied to running tasks; the host network is the container's own
    namespace, so a change of it must replace them (a new template hash)."""
    base = ServiceSpec.from_dict({"name": "web", "image": "x", "endpoint_mode": "dnsrr"})
    back = ServiceSpec.from_dict({**base.to_dict(), "networks": ["back"]})
    host = ServiceSpec.from_dict({**base.to_dict(), "networks": ["host"]})
    assert back.template_hash() == base.template_hash()
    assert host.template_hash() != base.template_hash()
