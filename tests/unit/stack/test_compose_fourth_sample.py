"""Constructs of the fourth real-world sample (docs/stack.md, "Fourth sample"), each reproduced by a
minimal hand-written file: Swarm's external ``bridge`` network, configs Swarm renders as templates,
secret drivers, an encrypted overlay, and two services of one stack publishing the same ingress port."""

from __future__ import annotations

import pytest

from p2porch.control.service_ops import ServiceOps
from p2porch.control.stack_ops import StackOps, parse_deploy_body
from p2porch.errors import ConfigError, ConflictError
from p2porch.stack import load_stack
from p2porch.testing.memstore import MemoryManager

from .compose_text import load, refusal, spec_of


def test_swarms_external_bridge_network_is_ignored_with_a_warning():
    """``networks: [bridge]`` with ``bridge: {external: {name: bridge}}`` (a one-service Swarm stack):
    Swarm attaches the task to its predefined node-local network; p2porch keeps it on the cluster network
    and says so, as for the external ``host`` network. It was refused as a reserved name."""
    definition = load(
        """
        services:
          web:
            image: nginx
            ports: ["80:80"]
            networks: [bridge]
        networks:
          bridge:
            external:
              name: bridge
        """
    )
    assert spec_of(definition, "web")["networks"] == [{"target": "app_default", "aliases": []}]
    assert [n.key for n in definition.networks] == ["default"]
    assert [w for w in definition.warnings if "bridge" in w] == [
        "ignoring networks.bridge (service web): the node's default bridge (Swarm's external network "
        "'bridge') is not supported: the tasks are on the cluster network"
    ]


def test_a_network_named_bridge_that_is_not_external_is_still_refused():
    text = "services:\n  web:\n    image: nginx\n    networks: [lan]\nnetworks:\n  lan:\n    name: bridge\n"
    assert "networks.lan.name: network name 'bridge' is reserved" in refusal(text)


def test_a_config_swarm_renders_as_a_template_carries_its_template_driver():
    """``template_driver: golang`` (a bot's Swarm stack renders its config with ``{{ env }}``): Swarm
    renders the file in each task, and so does p2porch now (it mounted it as written, first without a
    word, then with a warning): the object carries the driver, only ``driver`` is still warned."""
    definition = load(
        """
        services:
          bot:
            image: bot
            configs: [{source: conf, target: /app/config.json}]
            secrets: [token]
        configs:
          conf:
            content: '{"token": "{{ secret \\"token\\" }}"}'
            template_driver: golang
        secrets:
          token:
            environment: HOME
            driver: vault
        """,
        {"HOME": "/root"},
    )
    assert spec_of(definition, "bot")["configs"][0]["target"] == "/app/config.json"
    warned = [w for w in definition.warnings if w.startswith(("ignoring configs.", "ignoring secrets."))]
    assert [w.split(":")[0] for w in warned] == ["ignoring secrets.token.driver"]
    drivers = {(o.kind, o.key): o.template_driver for o in definition.objects}
    assert drivers == {("config", "conf"): "golang", ("secret", "token"): ""}


@pytest.mark.parametrize("driver", ["jinja", "Golang", "gotemplate"])
def test_a_template_driver_p2porch_does_not_render_is_refused_by_its_field(driver):
    text = "services:\n  a:\n    image: x\n    configs: [c]\nconfigs:\n  c:\n    content: x\n"
    text += f"    template_driver: {driver}\n"
    assert "configs.c.template_driver: unknown template driver" in refusal(text)


def test_an_encrypted_overlay_is_named_as_not_encrypted():
    """``driver_opts: {encrypted: "true"}`` asks Swarm for IPsec on the overlay: the warning says that
    traffic is not encrypted instead of only that driver options do not apply; other options still get
    the general warning."""
    definition = load(
        """
        services:
          api:
            image: api
            networks: [secure, tuned]
        networks:
          secure:
            driver: overlay
            driver_opts:
              encrypted: "true"
          tuned:
            driver_opts:
              encrypted: ""
              com.docker.network.driver.mtu: "1400"
        """
    )
    notes = [w for w in definition.warnings if w.startswith("networks.") or "driver_opts" in w]
    assert [w.split(":")[0] for w in notes] == [
        "networks.secure.driver_opts.encrypted",
        "ignoring networks.tuned.driver_opts",
        "networks.tuned.driver_opts.encrypted",
    ]
    assert "NOT encrypted" in notes[0]


def test_two_services_publishing_one_ingress_port_are_refused_before_anything_is_written():
    """A mailing-list manager's file runs its app and a demo copy, both on ``9000:9000``: the daemon
    refused the second service after creating the first (a half-deployed stack), Swarm refuses it as a
    port already in use and Compose cannot bind it twice. The error names the second service."""
    message = refusal(
        """
        services:
          app:
            image: app
            ports: ["9000:9000"]
          demo:
            image: app
            ports: ["9000:9000", "9001:9001"]
        """
    )
    assert "services.demo.ports: ingress port 9000/tcp is also published by service 'app'" in message


def test_one_port_published_twice_in_host_mode_or_other_protocols_is_accepted():
    definition = load(
        """
        services:
          dns:
            image: dns
            ports: ["53:53/udp"]
          web:
            image: web
            ports: ["53:53/tcp", {target: 80, published: 8080, mode: host}]
          web2:
            image: web
            ports: [{target: 80, published: 8080, mode: host}, "127.0.0.1:9000:9000"]
          web3:
            image: web
            ports: ["127.0.0.1:9000:9000"]
          extra:
            image: web
            profiles: [debug]
            ports: ["53:53/udp"]
        """
    )
    assert [s.short_name for s in definition.services] == ["dns", "web", "web2", "web3"]


async def test_the_daemon_refuses_a_body_with_one_ingress_port_twice_and_writes_nothing():
    """A client that skips the local check sends both services: the plan refuses before any write."""
    manager = MemoryManager()
    ops = StackOps(ServiceOps(manager, logs=None))  # type: ignore[arg-type]
    text = (
        "services:\n  a:\n    image: x\n    ports: ['8080:80']\n  b:\n    image: x\n    ports: ['8081:80']\n"
    )
    definition = load_stack("shop", text, lambda path: "")
    body = {"services": [{"short": s.short_name, "spec": s.spec} for s in definition.services]}
    body["services"][1]["spec"]["publish"][0]["published"] = 8080
    before = list(manager.commands)
    with pytest.raises(ConflictError) as info:
        await ops.apply(parse_deploy_body("shop", body)[0])
    assert info.value.field == "services.b"
    assert "8080/tcp is also published by service 'a'" in info.value.message
    assert manager.commands == before


def test_an_unrendered_template_config_still_needs_exactly_one_source():
    text = "services:\n  a:\n    image: x\n    configs: [c]\nconfigs:\n  c:\n    template_driver: golang\n"
    with pytest.raises(ConfigError, match="exactly one of file"):
        load(text)


def test_an_env_file_in_raw_format_passes_each_value_as_written():
    """``env_file: [{path: app.env, format: raw}]``: Compose passes the values "as-is, including quotes
    and ``$`` signs". The quotes were stripped (only interpolation was skipped), so ``TOKEN="a b"``
    reached the container as ``a b``. The default format still parses quotes, comments and ``$``."""
    files = {
        "/srv/app/raw.env": "TOKEN=\"a b\"\nPRICE=$5 # not a comment\nQ='x'\n# a comment line\nBARE\n",
        "/srv/app/std.env": 'TOKEN="a b"\nPRICE=$$5 # comment\n',
    }
    text = """
services:
  raw:
    image: app
    env_file: [{path: raw.env, format: raw}]
  std:
    image: app
    env_file: [std.env]
"""
    definition = load_stack("app", text, files.__getitem__, base_dir="/srv/app", environ={"BARE": "b"})
    env = {s.short_name: s.spec["env"] for s in definition.services}
    assert env["raw"] == {"TOKEN": '"a b"', "PRICE": "$5 # not a comment", "Q": "'x'", "BARE": "b"}
    assert env["std"] == {"TOKEN": "a b", "PRICE": "$5"}


@pytest.mark.parametrize("written", ['""', "[]", "''"])
def test_an_empty_entrypoint_clears_the_images_entrypoint(written):
    """Compose: ``entrypoint: ""`` or ``[]`` means the image's ENTRYPOINT is ignored (run the command
    without the image's wrapper script). p2porch read it as no entrypoint given, keeping the image's;
    it is now ``[""]``, which Docker reads as ``--entrypoint ""``. ``null`` still keeps the image's."""
    definition = load(
        f"""
        services:
          cleared:
            image: minio/mc
            entrypoint: {written}
            command: ["mc", "ls"]
          kept:
            image: minio/mc
            entrypoint: null
        """
    )
    assert spec_of(definition, "cleared")["entrypoint"] == [""]
    assert spec_of(definition, "cleared")["command"] == ["mc", "ls"]
    assert spec_of(definition, "kept")["entrypoint"] == []
