"""Compose task groups: ``network_mode: service:X`` co-schedules a service into X's task (a sidecar, or an
init container when X waits for it to complete), ``x-p2porch-sidecars``/``x-p2porch-init-containers`` where
Compose has no key, other network modes refused or ignored; errors name their Compose path."""

from __future__ import annotations

import pytest

from p2porch.model import ServiceSpec
from p2porch.stack import ComposeError, load_stack

POD = """
services:
  web:
    image: nginx:1
    ports: ["8080:80"]
    volumes: ["data:/data"]
    deploy:
      replicas: 3
    depends_on:
      migrate:
        condition: service_completed_successfully
  log_shipper:
    image: busybox
    command: tail -F /data/access.log
    network_mode: service:web
    environment: {LEVEL: info}
    ports: ["9000"]
    volumes: ["data:/data", "spool:/spool"]
    deploy:
      resources: {reservations: {memory: 64M}}
  migrate:
    image: busybox
    command: ["sh", "-c", "echo migrated"]
    network_mode: "service:web"
  api:
    image: busybox
    depends_on: [web]
volumes:
  data: {}
  spool: {}
"""


def error_paths(text: str) -> list[str]:
    with pytest.raises(ComposeError) as info:
        load_stack("s", text)
    return [e.field or "" for e in info.value.problems]


def test_network_mode_service_folds_sidecars_and_init_containers_into_the_target_task() -> None:
    stack = load_stack("shop", POD)
    assert [s.short_name for s in stack.services] == ["web", "api"]  # folded services leave the stack
    web = ServiceSpec.from_dict(stack.by_name()["shop-web"].spec)
    assert web.replicas == 3  # each replica gets the whole group
    (side,) = web.sidecars
    assert (side.name, side.image, side.command) == (
        "log-shipper",
        "busybox",
        ("tail", "-F", "/data/access.log"),
    )
    assert side.env == (("LEVEL", "info"),) and [p.target for p in side.publish] == [9000]
    assert side.reserve_memory_bytes == 64 * 1024**2
    (init,) = web.init_containers
    assert (init.name, init.command) == ("migrate", ("sh", "-c", "echo migrated"))
    assert sorted(m.target for m in web.mounts) == ["/data", "/spool"]  # the group shares its volumes
    assert stack.by_name()["shop-web"].depends_on == ()  # it waited for its own init container
    assert any("network_mode" in w and "log_shipper" in w for w in stack.warnings), stack.warnings


def test_the_extension_keys_give_a_group_where_compose_has_none() -> None:
    text = """
services:
  web:
    image: nginx:1
    x-p2porch-sidecars:
      - {name: proxy, image: "envoyproxy/envoy:v1.30", command: ["envoy", "-c", "/etc/envoy.yaml"]}
    x-p2porch-init-containers:
      - name: wait
        image: busybox
        command: "sh -c 'until nslookup db; do sleep 1; done'"
"""
    web = ServiceSpec.from_dict(load_stack("s", text).by_name()["s-web"].spec)
    assert [c.name for c in web.sidecars] == ["proxy"] and web.sidecars[0].image == "envoyproxy/envoy:v1.30"
    assert web.init_containers[0].command == ("sh", "-c", "until nslookup db; do sleep 1; done")


@pytest.mark.parametrize(
    ("service", "path"),
    [
        ("    network_mode: container:abc\n", "services.side.network_mode"),
        ("    network_mode: service:nope\n", "services.side.network_mode"),
        (
            "    x-p2porch-sidecars: [{name: x, image: 'Bad Image'}]\n",
            "services.side.x-p2porch-sidecars[0].image",
        ),
    ],
)
def test_bad_network_modes_and_groups_name_their_compose_path(service: str, path: str) -> None:
    text = f"services:\n  web:\n    image: nginx\n  side:\n    image: busybox\n{service}"
    assert path in error_paths(text)


def test_a_chain_of_shared_namespaces_and_a_port_clash_are_refused() -> None:
    chain = """
services:
  web: {image: nginx}
  a: {image: busybox, network_mode: "service:web"}
  b: {image: busybox, network_mode: "service:a"}
"""
    assert "services.b.network_mode" in error_paths(chain)
    clash = """
services:
  web: {image: nginx, ports: ["8080:80"]}
  side: {image: busybox, network_mode: "service:web", ports: ["8080:81"]}
"""
    assert "services.web" in error_paths(clash)


def test_network_mode_host_is_the_host_network_not_a_group() -> None:
    stack = load_stack("s", "services:\n  web:\n    image: nginx\n    network_mode: host\n")
    assert any("network namespace" in w for w in stack.warnings)
    assert stack.services[0].spec["networks"] == [{"target": "host", "aliases": []}]
    assert not ServiceSpec.from_dict(stack.services[0].spec).is_group


SIDECAR_WITH_FILES = """
services:
  web:
    image: nginx:1
    secrets: [tls]
  agent:
    image: busybox
    network_mode: service:web
    secrets: [api_key]
    cap_add: [NET_ADMIN]
    read_only: true
secrets:
  tls: {file: ./tls.pem}
  api_key: {file: ./key.txt}
"""


def test_a_folded_service_brings_its_secrets_and_names_what_its_target_does_not_take() -> None:
    stack = load_stack("s", SIDECAR_WITH_FILES)
    web = ServiceSpec.from_dict(stack.by_name()["s-web"].spec)
    assert sorted(ref.target for ref in web.secrets) == ["/run/secrets/api_key", "/run/secrets/tls"]
    (warning,) = [w for w in stack.warnings if "services.agent: runs in" in w]
    assert "read_only" in warning and "cap_add" not in warning, warning  # cap_add: its own (h52left)
    (agent,) = web.sidecars
    assert agent.cap_add == ("NET_ADMIN",)
