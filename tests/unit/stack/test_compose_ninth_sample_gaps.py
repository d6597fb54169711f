"""Three small gaps the ninth real-world sample found (docs/stack.md, "Ninth sample"): ``dns_opt`` and
``group_add`` mapped to the engine options ``service create`` has, ``stack config`` printing environment
values as ``docker compose config`` does, and ``network_mode: service:X`` refused beside ``networks``
as compose-go refuses it."""

from __future__ import annotations

import json

import pytest
import yaml

from p2porch.errors import ConfigError
from p2porch.model import ServiceSpec

from .compose_text import load, refusal, spec_of
from .test_stack_cli_names import run


def test_dns_opt_and_group_add_reach_the_container_options_without_a_warning():
    definition = load(
        """
        services:
          jellyfin:
            image: jellyfin/jellyfin
            group_add: ["109", 44, video]
            dns_opt: [use-vc, "ndots:2"]
        """
    )
    spec = spec_of(definition, "jellyfin")
    assert spec["container"] == {"groups": ["109", "44", "video"], "dns_options": ["use-vc", "ndots:2"]}
    assert ServiceSpec.from_dict(spec).container.groups == ("109", "44", "video")
    assert not [w for w in definition.warnings if "dns_opt" in w or "group_add" in w], definition.warnings


@pytest.mark.parametrize(
    ("key", "value", "path"),
    [
        ("dns_opt", "[bad option]", "services.web.dns_opt"),
        ("dns_opt", "ndots:2", "services.web.dns_opt"),  # a string, not a list
        ("group_add", "['bad group']", "services.web.group_add"),
        ("group_add", "[true]", "services.web.group_add"),
    ],
)
def test_a_bad_dns_opt_or_group_add_names_its_compose_key(key: str, value: str, path: str) -> None:
    message = refusal(f"services:\n  web:\n    image: w\n    {key}: {value}\n")
    assert path in message, message


ENVIRONMENT = """
services:
  web:
    image: nginx
    environment:
      IN_DOCKER: true
      PORT: 8080
      RATIO: 1.5
      OZONE_OPTS:
      FROM_CLI:
      EMPTY: ""
  app:
    image: app
    environment: [DEBUG, FROM_CLI, X=1]
"""


def _config(tmp_path, monkeypatch, capsys, *flags: str) -> str:
    compose = tmp_path / "compose.yaml"
    compose.write_text(ENVIRONMENT)
    monkeypatch.setenv("FROM_CLI", "hello")
    monkeypatch.delenv("OZONE_OPTS", raising=False)
    monkeypatch.delenv("DEBUG", raising=False)
    assert run(["stack", "config", "-c", str(compose), *flags]) == 0
    return str(capsys.readouterr().out)


def test_stack_config_prints_environment_values_as_docker_compose_config_does(tmp_path, monkeypatch, capsys):
    """compose-go reads ``environment`` as ``MappingWithEquals`` (``map[string]*string``): every value a
    string (``true`` -> "true"), a key without a value taken from the environment or left without one
    (printed ``null``)."""
    printed = yaml.safe_load(_config(tmp_path, monkeypatch, capsys))
    assert printed["services"]["web"]["environment"] == {
        "IN_DOCKER": "true",
        "PORT": "8080",
        "RATIO": "1.5",
        "OZONE_OPTS": None,
        "FROM_CLI": "hello",
        "EMPTY": "",
    }
    assert printed["services"]["app"]["environment"] == {"DEBUG": None, "FROM_CLI": "hello", "X": "1"}
    as_json = json.loads(_config(tmp_path, monkeypatch, capsys, "--json"))
    assert as_json["services"]["web"]["environment"]["IN_DOCKER"] == "true"


def test_the_specs_sent_keep_strings_and_leave_unset_variables_out():
    definition = load(ENVIRONMENT, environ={"FROM_CLI": "hello"})
    assert spec_of(definition, "web")["env"] == {
        "IN_DOCKER": "true",
        "PORT": "8080",
        "RATIO": "1.5",
        "FROM_CLI": "hello",
        "EMPTY": "",
    }
    assert spec_of(definition, "app")["env"] == {"FROM_CLI": "hello", "X": "1"}


@pytest.mark.parametrize("networks", ["[back]", "{back: {aliases: [b]}}", "[default]"])
def test_network_mode_service_beside_networks_is_refused_as_compose_refuses_it(networks: str) -> None:
    """compose-go's ``checkConsistency``: "service side declares mutually exclusive `network_mode` and
    `networks`". The service runs in web's task: its own networks would be silently dropped."""
    text = (
        "services:\n  web: {image: nginx, networks: [back]}\n"
        f"  side:\n    image: busybox\n    network_mode: service:web\n    networks: {networks}\n"
        "networks: {back: {}}\n"
    )
    with pytest.raises(ConfigError) as info:
        load(text)
    assert info.value.field == "services.side.networks"
    assert "network_mode: service:web" in info.value.message


def test_network_mode_service_without_networks_and_host_beside_networks_still_load() -> None:
    grouped = load(
        "services:\n  web: {image: nginx}\n  side: {image: busybox, network_mode: 'service:web'}\n"
    )
    assert [s.short_name for s in grouped.services] == ["web"]
    host = load(
        "services:\n  web: {image: nginx, network_mode: host, networks: [back]}\nnetworks: {back: {}}\n"
    )
    assert any("network_mode" in w for w in host.warnings)  # Swarm stacks write it; kept as a warning
