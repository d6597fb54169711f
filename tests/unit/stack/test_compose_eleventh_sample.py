"""Constructs of the eleventh real-world sample (docs/stack.md, "Eleventh sample"), each reproduced by a
minimal hand-written file: the ones the sample's files rely on (checked right), and the one gap probed
beside it, a label written without ``=`` that ``stack config`` printed as null where compose-go prints
an empty string."""

from __future__ import annotations

import json

import pytest
import yaml

from .compose_text import load, refusal, spec_of
from .test_stack_cli_names import run

# Ghost's official file (TryGhost/ghost-docker): required variables with a message, an alternative
# value nesting a variable, and a dependency of an inactive profile that is not required.
GHOST = """
services:
  ghost:
    image: ghost:${GHOST_VERSION:-6-alpine}
    environment:
      url: https://${DOMAIN:?DOMAIN environment variable is required}
      admin__url: ${ADMIN_DOMAIN:+https://${ADMIN_DOMAIN}}
    depends_on:
      db: {condition: service_healthy}
      activitypub: {condition: service_started, required: false}
  db:
    image: mysql:8.0.44
    healthcheck:
      test: mysqladmin ping -p$$MYSQL_ROOT_PASSWORD -h 127.0.0.1
      interval: 1s
      start_period: 30s
      start_interval: 10s
      retries: 120
  activitypub:
    image: ghcr.io/tryghost/activitypub:1.2.13
    profiles: [activitypub]
"""


def test_ghost_loads_with_its_required_variables_and_the_alternative_value() -> None:
    definition = load(GHOST, {"DOMAIN": "example.com", "ADMIN_DOMAIN": "admin.example.com"})
    env = spec_of(definition, "ghost")["env"]
    assert env["url"] == "https://example.com"
    assert env["admin__url"] == "https://admin.example.com"
    assert [s.short_name for s in definition.services] == ["db", "ghost"]
    assert spec_of(definition, "db")["health"]["start_interval_s"] == 10.0
    assert spec_of(definition, "db")["health"]["cmd"][1].startswith("mysqladmin ping -p$MYSQL_ROOT_PASSWORD")


def test_ghost_without_the_admin_domain_gets_an_empty_admin_url() -> None:
    env = spec_of(load(GHOST, {"DOMAIN": "example.com"}), "ghost")["env"]
    assert env["admin__url"] == ""


def test_an_unset_required_variable_is_refused_naming_the_key_and_the_message() -> None:
    message = refusal(GHOST)
    assert "services.ghost.environment.url" in message, message
    assert "DOMAIN environment variable is required" in message, message


# A label written without "=" in the list syntax (Compose's labels are a mapping of strings).
LABELS = """
services:
  web:
    image: nginx
    labels: [com.example.tier=front, com.example.flag]
    environment: [UNSET_HERE]
    deploy:
      labels: [traefik.enable]
"""


def _printed(tmp_path, capsys, text: str, *flags: str) -> dict:
    (tmp_path / "compose.yaml").write_text(text)
    assert run(["stack", "config", *flags, "-c", str(tmp_path / "compose.yaml")]) == 0
    out = capsys.readouterr().out
    return json.loads(out) if "--json" in flags else yaml.safe_load(out)


@pytest.mark.parametrize("flags", [(), ("--json",)])
def test_stack_config_prints_a_label_without_a_value_as_an_empty_string(tmp_path, capsys, flags) -> None:
    """compose-go reads ``labels`` (and ``deploy.labels``) as a mapping of strings: ``com.example.flag``
    is ``""``, printed so; an ``environment`` entry without ``=`` stays without a value (null). Before,
    the label was printed null, which the deploy already took as ``""``."""
    web = _printed(tmp_path, capsys, LABELS, *flags)["services"]["web"]
    assert web["labels"] == {"com.example.tier": "front", "com.example.flag": ""}
    assert web["deploy"]["labels"] == {"traefik.enable": ""}
    assert web["environment"] == {"UNSET_HERE": None}
    spec = spec_of(load(LABELS), "web")
    assert spec["labels"]["com.example.flag"] == ""
    assert spec["service_labels"] == {"traefik.enable": ""}
