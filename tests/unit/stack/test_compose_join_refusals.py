"""A ``pid``/``ipc: service:X`` joiner is folded into X's task only when that runs it as it ran on its own
(review r51a): otherwise the key stays ignored with one warning saying why and the service deploys on its
own, as before session 51 (docs/stack.md *Namespaces*)."""

from __future__ import annotations

import pytest

from p2porch.errors import ConfigError
from p2porch.model import ServiceSpec

from .compose_text import load, spec_of

X = "haproxy: {image: haproxy}"


@pytest.mark.parametrize(
    ("services", "why"),
    [
        (  # 1: a one-shot renewal: its exit 0 would replace haproxy's task every time
            f"{{{X}, certbot: {{image: c, pid: 'service:haproxy', restart: 'no', command: renew}}}}",
            "it is not restarted on every exit",
        ),
        (
            f"{{{X}, certbot: {{image: c, pid: 'service:haproxy', deploy: {{restart_policy: "
            "{condition: on-failure}}}}",
            "it is not restarted on every exit",
        ),
        (
            f"{{{X}, certbot: {{image: c, pid: 'service:haproxy', deploy: {{mode: replicated-job}}}}}}",
            "it is a job or has 0 replicas",
        ),
        (
            f"{{{X}, certbot: {{image: c, pid: 'service:haproxy', deploy: {{replicas: 0}}}}}}",
            "it is a job or has 0 replicas",
        ),
        (
            f"{{{X}, certbot: {{image: c, pid: 'service:haproxy', healthcheck: {{test: [CMD, ok]}}}}}}",
            "it has a health check",
        ),
        (  # a third service waits for it to complete
            f"{{{X}, certbot: {{image: c, pid: 'service:haproxy'}}, "
            "web: {image: w, depends_on: {certbot: {condition: service_completed_successfully}}}}",
            "web waits for it (service_completed_successfully)",
        ),
        (
            f"{{{X}, certbot: {{image: c, pid: 'service:haproxy'}}, "
            "web: {image: w, depends_on: {certbot: {condition: service_healthy}}}}",
            "web waits for it (service_healthy)",
        ),
        (  # 2: keepalived on the host network would be moved into haproxy's overlay namespace
            f"{{{X}, keepalived: {{image: k, network_mode: host, pid: 'service:haproxy'}}}}",
            "it is on the host network: haproxy's task would take it off its node's network",
        ),
        (  # 3: py-spy with SYS_PTRACE is folded with it (h52left); a read-only root is not a member's
            f"{{{X}, spy: {{image: s, pid: 'service:haproxy', cap_add: [SYS_PTRACE], read_only: true}}}}",
            "a sidecar takes none of its container options (read_only) but privileged, cap_add and cap_drop",
        ),
        (  # 4: its own wait for a healthy db
            f"{{{X}, db: {{image: d}}, agent: {{image: a, pid: 'service:haproxy', "
            "depends_on: {db: {condition: service_healthy}}}}",
            "it depends on db",
        ),
        (
            f"{{{X}, agent: {{image: a, pid: 'service:haproxy'}}, web: {{image: w, links: ['agent:ag2']}}}}",
            "another service links to it under another name",
        ),
        (  # 6: one file system per task
            f"{{{X.replace('}', ', secrets: [{source: a, target: tok}]}')}, "
            "agent: {image: a, pid: 'service:haproxy', secrets: [{source: b, target: tok}]}}",
            "its secrets file /run/secrets/tok is another in haproxy's task",
        ),
        (
            f"{{{X}, main: {{image: m, pid: 'service:haproxy'}}}}",
            "'main' is already the name of a container of haproxy's task",
        ),
        (
            "{haproxy: {image: h, x-p2porch-sidecars: ['name=agent,image=a']}, "
            "agent: {image: a, pid: 'service:haproxy'}}",
            "'agent' is already the name of a container of haproxy's task",
        ),
        (  # 7: Docker refuses to join a private IPC namespace
            "{haproxy: {image: h, ipc: private}, shm: {image: s, ipc: 'service:haproxy'}}",
            "haproxy's IPC namespace is not shareable (ipc: private)",
        ),
        (  # review h51 3: it starts once haproxy is healthy, a sidecar with its main container
            "{haproxy: {image: h, healthcheck: {test: [CMD, ok]}}, agent: {image: a, pid: 'service:haproxy', "
            "depends_on: {haproxy: {condition: service_healthy}}}}",
            "it waits for haproxy (service_healthy): a sidecar starts with haproxy's main container",
        ),
        (  # review h51 6: what it had on its own would be lost in haproxy's task
            "{haproxy: {image: h, networks: [a]}, agent: {image: a, pid: 'service:haproxy', networks: [b]}}",
            "it is on app_b, which haproxy is not on",
        ),
        (
            f"{{{X}, agent: {{image: a, pid: 'service:haproxy', deploy: {{mode: global}}}}}}",
            "its own mode would not apply in haproxy's task",
        ),
        (
            f"{{{X}, agent: {{image: a, pid: 'service:haproxy', deploy: {{replicas: 3}}}}}}",
            "its own replicas would not apply in haproxy's task",
        ),
    ],
)
def test_a_join_that_would_change_how_it_runs_is_ignored_and_it_deploys_on_its_own(services, why):
    secrets = "secrets: {a: {file: ./a}, b: {file: ./b}}"
    networks = "networks: {a: {}, b: {}}" if "networks:" in services else ""
    definition = load(f"services: {services}\n{secrets if 'secrets:' in services else ''}\n{networks}")
    warnings = "\n".join(definition.warnings)
    joiner = next(s for s in ("certbot", "keepalived", "spy", "agent", "main", "shm") if s in services)
    assert f"(service {joiner}): {why}" in warnings, warnings
    assert "ignoring" in warnings and "runs in haproxy's task" not in warnings
    assert joiner in {s.short_name for s in definition.services}
    sidecars = spec_of(definition, "haproxy").get("sidecars", [])
    assert len(sidecars) == ("x-p2porch-sidecars" in services)


def test_a_dependency_cycle_through_a_joiner_is_still_refused():
    """10: X depends_on S, S pid: service:X (compose-go refuses the cycle; so did p2porch before)."""
    with pytest.raises(ConfigError, match="circular dependency"):
        load("services: {x: {image: x, depends_on: [s]}, s: {image: s, pid: 'service:x'}}")


def test_references_to_a_joiner_reach_its_task():
    """4: a dependent's service_started wait is a wait for X; the joiner's own aliases are X's aliases."""
    definition = load(
        """
        services:
          app: {image: app}
          agent:
            image: agent
            pid: "service:app"
            networks: {default: {aliases: [collector]}}
          web: {image: web, depends_on: [agent]}
        """
    )
    app = spec_of(definition, "app")
    assert app["sidecars"][0]["name"] == "agent"
    assert app["networks"] == [{"target": "app_default", "aliases": ["agent", "collector"]}]
    web = next(s for s in definition.services if s.short_name == "web")
    assert [d.service for d in web.depends_on] == ["app"]


def test_a_network_mode_member_beside_a_pid_joiner_loses_no_networks():
    """9: the member naming no networks is on X's, alias of the joiner included: no warning about it."""
    definition = load(
        """
        services:
          app: {image: app}
          agent: {image: agent, pid: "service:app"}
          proxy: {image: proxy, network_mode: "service:app"}
        """
    )
    assert [s["name"] for s in spec_of(definition, "app")["sidecars"]] == ["proxy", "agent"]
    assert "services.proxy: runs in app's task; its own networks" not in "\n".join(definition.warnings)


def test_an_ipc_member_of_a_private_ipc_main_is_refused_through_the_api():
    """7: Docker refuses a container:<main> IPC mode when the main's is private or none."""
    with pytest.raises(ConfigError, match=r"sidecars\[0\]\.ipc: the main container's IPC namespace"):
        ServiceSpec.from_dict(
            {
                "name": "d",
                "image": "d",
                "container": {"ipc_mode": "private"},
                "sidecars": ["name=p,image=p,ipc=main"],
            }
        )


def test_a_dependents_own_wait_on_the_target_keeps_its_condition():
    definition = load(
        """
        services:
          app: {image: app, healthcheck: {test: [CMD, ok]}}
          agent: {image: agent, pid: "service:app"}
          web:
            image: web
            depends_on: {agent: {condition: service_started}, app: {condition: service_healthy}}
        """
    )
    web = next(s for s in definition.services if s.short_name == "web")
    assert [(d.service, d.condition) for d in web.depends_on] == [("app", "service_healthy")]


@pytest.mark.parametrize("mode", ["private", "none"])
def test_a_network_mode_members_ipc_on_an_unshareable_main_is_ignored_it_stays_in_the_group(mode):
    """Review h51 2: the file deployed before ipc: service:X was read; it was refused whole (the group's
    sidecars[0].ipc). Only the ipc key is ignored, with a warning; the member stays in X's task."""
    definition = load(
        f"""
        services:
          x: {{image: x, ipc: {mode}}}
          m: {{image: m, network_mode: "service:x", pid: "service:x", ipc: "service:x"}}
        """
    )
    member = spec_of(definition, "x")["sidecars"][0]
    assert member["name"] == "m" and member.get("pid") == "main" and "ipc" not in member
    warnings = "\n".join(definition.warnings)
    assert (
        f"ignoring ipc: service:x (service m): x's IPC namespace is not shareable (ipc: {mode})" in warnings
    )
    assert "ignoring pid" not in warnings


def test_a_joiner_with_cap_add_and_cap_drop_is_folded_with_its_capabilities():
    """h52left: the usual profiler (``pid: service:X`` with ``cap_add: [SYS_PTRACE]``) was deployed on its
    own with "a sidecar takes none of its container options (cap_add)": a task group's container could
    not carry capabilities. Now its GroupContainer has them (spec version 7) and it joins X's task."""
    definition = load(
        f"services: {{{X}, spy: {{image: s, pid: 'service:haproxy', cap_add: [sys_ptrace], "
        "cap_drop: [NET_RAW]}}"
    )
    warnings = "\n".join(definition.warnings)
    assert "ignoring" not in warnings and "not applied" not in warnings, warnings
    assert {s.short_name for s in definition.services} == {"haproxy"}
    (spy,) = spec_of(definition, "haproxy")["sidecars"]
    assert (spy["cap_add"], spy["cap_drop"], spy["pid"]) == (["SYS_PTRACE"], ["NET_RAW"], "main")
    group = ServiceSpec.from_dict(spec_of(definition, "haproxy"))
    assert group.sidecars[0].cap_add == ("SYS_PTRACE",)
