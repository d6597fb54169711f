"""Constructs of the ninth real-world sample (docs/stack.md, "Ninth sample"), each reproduced by a
minimal hand-written file: ``volumes_from``, with which EspoCRM's official Compose file (the Docker
Official Image's documentation) gives its daemon and websocket services the application's volumes. It
was ignored with a warning, so those services ran without the application's data."""

from __future__ import annotations

import textwrap

import pytest

from p2porch.errors import ConfigError
from p2porch.model import ServiceSpec
from p2porch.stack import load_stack
from p2porch.stack.resolve import ComposeFile

ESPOCRM = """
services:
  espocrm:
    image: espocrm/espocrm:latest
    volumes:
      - espocrm-data:/var/www/html/data
      - /srv/espocrm/custom:/var/www/html/custom
      - /var/cache/espocrm
  espocrm-daemon:
    image: espocrm/espocrm:latest
    volumes_from:
      - espocrm
    entrypoint: docker-daemon.sh
    depends_on:
      espocrm:
        condition: service_healthy
  espocrm-websocket:
    image: espocrm/espocrm:latest
    volumes_from: ["espocrm-daemon:ro"]
    volumes: ["/srv/ws:/var/www/html/custom"]
volumes:
  espocrm-data:
"""


def _load(text: str, stack: str = "crm"):
    return load_stack(stack, [ComposeFile("/srv/crm/compose.yaml", textwrap.dedent(text), "/srv/crm")], None,
                      environ={})  # fmt: skip


def _mounts(definition, short: str) -> dict[str, tuple[str, bool]]:
    spec = next(s for s in definition.services if s.short_name == short).spec
    ServiceSpec.from_dict(spec)
    return {m["target"]: (m["source"], m["readonly"]) for m in spec.get("mounts", [])}


def test_volumes_from_shares_the_named_volumes_and_binds_of_the_service() -> None:
    definition = _load(ESPOCRM)
    assert _mounts(definition, "espocrm-daemon") == {
        "/var/www/html/data": ("crm_espocrm-data", False),
        "/var/www/html/custom": ("/srv/espocrm/custom", False),
    }
    warnings = [w for w in definition.warnings if "volumes_from" in w]
    assert warnings == [
        "volumes_from (service espocrm-daemon): espocrm's volume at /var/cache/espocrm "
        "belongs to each container: not shared (name the volume in both services)"
    ]


def test_volumes_from_ro_chains_and_own_mounts_win() -> None:
    """``:ro`` makes every copied mount read-only; what the daemon has from ``volumes_from`` is passed
    on (Docker copies a container's mount points); the websocket's own mount at the same target wins."""
    assert _mounts(_load(ESPOCRM), "espocrm-websocket") == {
        "/var/www/html/custom": ("/srv/ws", False),
        "/var/www/html/data": ("crm_espocrm-data", True),
    }


def test_volumes_from_makes_the_service_a_dependency() -> None:
    definition = _load(ESPOCRM)
    order = [s.short_name for s in definition.services]
    assert order.index("espocrm-daemon") < order.index("espocrm-websocket")
    daemon = next(s for s in definition.services if s.short_name == "espocrm-daemon")
    assert [(d.service, d.condition) for d in daemon.depends_on] == [("espocrm", "service_healthy")]
    websocket = next(s for s in definition.services if s.short_name == "espocrm-websocket")
    assert [(d.service, d.condition) for d in websocket.depends_on] == [("espocrm-daemon", "service_started")]


def test_volumes_from_a_container_outside_the_stack_is_warned() -> None:
    definition = _load("""
        services:
          app: {image: app, volumes_from: ["container:legacy-data:ro"]}
    """)
    assert _mounts(definition, "app") == {}
    assert any(
        w.startswith("volumes_from (service app): container:legacy-data: a container outside the stack")
        for w in definition.warnings
    )


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ('["missing"]', "services.app.volumes_from[0]: service 'missing' is not defined"),
        ('["db:rx"]', "services.app.volumes_from[0]: 'db:rx': mode 'rx' is not supported (ro or rw)"),
        ('["app"]', "services.app.volumes_from[0]: a cycle: app -> app"),
    ],
)
def test_volumes_from_errors_name_the_entry(value: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        _load(f"""
            services:
              db: {{image: postgres, volumes: ["pg:/var/lib/postgresql/data"]}}
              app: {{image: app, volumes_from: {value}}}
            volumes: {{pg: {{}}}}
        """)
    assert message in info.value.message.splitlines()


def test_volumes_from_cycle_between_two_services_is_refused() -> None:
    with pytest.raises(ConfigError) as info:
        _load("""
            services:
              a: {image: a, volumes_from: [b], volumes: ["/srv/a:/a"]}
              b: {image: b, volumes_from: [a], volumes: ["/srv/b:/b"]}
        """)
    assert "a cycle: a -> b -> a" in info.value.message


ENTE_SOCAT = """
services:
  museum:
    image: ghcr.io/ente-io/server
    networks: [ente, proxy]
  socat:
    image: alpine/socat
    network_mode: service:museum
    command: "TCP-LISTEN:3200,fork,reuseaddr TCP:minio:3200"
networks:
  ente:
  proxy:
"""


def test_a_sidecar_that_names_no_networks_is_not_warned_about_networks() -> None:
    """Ente's Traefik example: ``socat`` shares ``museum``'s namespace and names no networks; it was
    warned "its own networks is not applied" (the implicit default network it never asked for)."""
    definition = _load(ENTE_SOCAT)
    assert [s.short_name for s in definition.services] == ["museum"]
    assert not [w for w in definition.warnings if "not applied" in w]
    assert (
        "network_mode (service socat): runs in museum's task as a sidecar (a task group)"
        in definition.warnings
    )


def test_a_sidecar_own_settings_the_task_does_not_take_are_named_once() -> None:
    text = ENTE_SOCAT.replace(
        "    network_mode: service:museum\n", "    network_mode: service:museum\n    deploy: {replicas: 3}\n"
    )
    warnings = [w for w in _load(text).warnings if "not applied" in w]
    assert warnings == [
        "services.socat: runs in museum's task; its own replicas is not applied (the task's are museum's)"
    ]


WINDOWS_ONLY = """
services:
  trademanagementservice:
    image: dtr.demo.dckr.org/demo/dotnetdemo:latest
    deploy:
      placement:
        constraints:
          - node.role==worker
          - {constraint}
    credential_spec:
      config: credspectest2
configs:
  credspectest2:
    external: true
"""


def test_a_windows_only_constraint_is_refused_not_dropped() -> None:
    """A Windows gMSA example's ``node.platform.os==windows``: no p2porch node matches (they all run
    Linux). It was dropped with a warning, so the Windows image was placed on Linux nodes."""
    with pytest.raises(ConfigError) as info:
        _load(WINDOWS_ONLY.format(constraint="node.platform.os==windows"))
    assert (
        "services.trademanagementservice.deploy.placement.constraints[1]: 'node.platform.os==windows': "
        "every p2porch node runs Linux, so no node matches"
    ) in info.value.message.splitlines()


@pytest.mark.parametrize("constraint", ["node.platform.os == linux", "node.platform.os!=windows"])
def test_a_platform_os_constraint_every_node_meets_is_dropped_silently(constraint: str) -> None:
    definition = _load(WINDOWS_ONLY.format(constraint=constraint))
    assert definition.services[0].spec["constraints"] == ["node.role==replica"]
    assert not [w for w in definition.warnings if "platform" in w]


def test_volumes_from_a_service_of_an_inactive_profile_is_refused() -> None:
    """Compose implies a required dependency on it, and refuses the file ("depends on undefined
    service"); before session 52 it was ignored with a warning (test_compose_spec_rows.py)."""
    text = """
        services:
          app: {image: app, volumes_from: [tools]}
          tools: {image: tools, profiles: [debug], volumes: ["/srv/tools:/tools"]}
    """
    with pytest.raises(ConfigError) as info:
        _load(text)
    assert "services.app.volumes_from[0]: service 'tools' is in no active profile" in info.value.message
