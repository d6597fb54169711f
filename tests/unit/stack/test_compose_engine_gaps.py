"""Compose keys that were ignored or refused and now reach the engine as Compose and Docker define them
(h49): ``mem_swappiness`` (HostConfig.MemorySwappiness), ``pull_policy`` (when a node pulls the task's
image), ``volume.subpath`` (refused naming the engine API it needs), and ``--memory-swap`` on
``service create/update`` (what ``memswap_limit`` maps to)."""

from __future__ import annotations

import pytest

from p2porch.agent.dockerspec import engine_options
from p2porch.cli.main import build_parser, main
from p2porch.cli.service_spec_flags import spec_changes, validated_spec

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
        ("daily", None, True),
        ("weekly", None, True),
        ("every_12h", None, True),
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


def test_a_volume_subpath_is_refused_naming_the_engine_api_it_needs():
    message = refusal(
        """
        services:
          web:
            image: nginx
            volumes: [{type: volume, source: data, target: /data, volume: {subpath: a}}]
        volumes: {data: {}}
        """
    )
    assert "services.web.volumes[0].volume.subpath: needs Docker Engine API 1.45 (Docker 26.0)" in message


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
