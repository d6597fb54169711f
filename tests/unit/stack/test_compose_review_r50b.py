"""Review r50b's findings on session 50's Compose changes: a refresh pull policy pulled at every start on a
classic-store engine (a pull sets no ``LastTagTime``), a subpath on an anonymous volume loaded and failed
at every start, ``a/../b`` was refused (Docker takes it) naming ``...subpath`` instead of
``...volume.subpath``, a host-network service's ``expose`` range was cut at 1024 ports, a bad entry named
``ports``, its conflict said "published ... in host mode", and a sidecar's ``pid: host`` equal to its
target's was dropped without a warning."""

from __future__ import annotations

import pytest

from p2porch.agent.docker_executor import DockerExecutor
from p2porch.errors import ConfigError
from p2porch.model import parse_mount

from .compose_text import load, refusal, spec_of
from .test_compose_namespaces_refresh_subpath import NOW, Images, subpath_file


async def test_a_refresh_policy_does_not_pull_again_an_image_it_pulled_when_the_engine_keeps_no_tag_time():
    """Docker's classic image store reports 0001-01-01 for a pulled image: the executor's own pull time
    counts, so ``daily`` pulls once a day, not at every task start."""
    now = [NOW]
    engine = Images("0001-01-01T00:00:00Z", "app:1")
    executor = DockerExecutor(engine, clock=lambda: now[0])  # type: ignore[arg-type]
    assert await executor._ensure_image("app:1", "daily") == ""
    assert engine.pulls == ["app:1"]  # no time known: old
    now[0] += 3600.0
    assert await executor._ensure_image("app:1", "daily") == ""
    assert engine.pulls == ["app:1"]  # pulled an hour ago by this executor
    now[0] += 86400.0
    await executor._ensure_image("app:1", "daily")
    assert engine.pulls == ["app:1", "app:1"]


def test_a_subpath_on_an_anonymous_volume_is_refused_at_load():
    message = refusal(
        "services: {web: {image: nginx, volumes: [{type: volume, target: /d, volume: {subpath: x}}]}}"
    )
    assert "services.web.volumes[0].volume.subpath: a subpath needs a named volume" in message
    with pytest.raises(ConfigError, match="mounts.subpath: a subpath needs a named volume"):
        parse_mount("type=volume,target=/d,volume-subpath=x", fieldname="mounts")


@pytest.mark.parametrize(
    ("written", "mounted"), [("a/../b", "b"), ("./a//b/", "a/b"), ("..x", "..x"), (".", "")]
)
def test_a_subpath_docker_takes_is_mounted_in_its_clean_form(written, mounted):
    """Docker checks ``filepath.IsLocal``: ``a/../b`` stays inside the volume (``a/../../b`` is refused,
    naming ``volume.subpath``: test_compose_namespaces_refresh_subpath.py)."""
    mount = spec_of(load(subpath_file(written)), "web")["mounts"][0]
    assert mount.get("subpath", "") == mounted


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("40000-57000/udp", "services.a.expose[1]: port range '40000-57000' is longer than 1024 ports"),
        ("0", "services.a.expose[1]: invalid port range '0'"),
        ("70000", "services.a.expose[1]: invalid port range '70000'"),
    ],
)
def test_a_host_network_services_expose_entry_is_checked_as_ports_are(entry, message):
    text = f"services: {{a: {{image: a, network_mode: host, expose: ['9100', '{entry}']}}}}"
    assert message in refusal(text)
    assert "services.a.ports" not in refusal(text)
    load(f"services: {{a: {{image: a, expose: ['{entry}']}}}}")  # off the host network: loads as before


@pytest.mark.parametrize("order", ["a first", "b first"])
def test_an_exposed_port_in_conflict_is_named_exposed_not_published(order):
    a = "a: {image: a, network_mode: host, expose: ['8080']}"
    b = "b: {image: b, ports: ['8080:80']}"
    message = refusal(f"services: {{{a}, {b}}}" if order == "a first" else f"services: {{{b}, {a}}}")
    if order == "a first":
        assert "services.b.ports: port 8080/tcp is exposed on the host network by service 'a'" in message
    else:
        assert "services.a.expose: port 8080/tcp is published by service 'b' in ingress mode" in message
    assert "in host mode" not in message


def test_a_sidecars_container_option_equal_to_its_targets_is_still_said_to_be_dropped():
    definition = load(
        """
        services:
          app: {image: app, pid: host}
          agent: {image: agent, network_mode: "service:app", pid: host}
        """
    )
    assert "services.agent: runs in app's task; its own container.pid_mode is not applied" in "\n".join(
        definition.warnings
    )
