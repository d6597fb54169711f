"""Constructs of the tenth real-world sample (docs/stack.md, "Tenth sample"), each reproduced by a
minimal hand-written file, and the two known gaps it closed: ``stack config`` printing ``env_file``
values under ``environment`` as ``docker compose config`` does, and ``links`` ordering the start like
``depends_on``."""

from __future__ import annotations

import json

import pytest
import yaml

from p2porch.model import ServiceSpec
from p2porch.stack import load_stack
from p2porch.stack.source import stack_source

from .compose_text import load, refusal, spec_of
from .test_stack_cli_names import run

# Seafile's Swarm stack: GlusterFS volumes named after sub-directories of one Gluster volume.
GLUSTER = """
services:
  seahub:
    image: ggogel/seahub:8.0.2
    volumes:
      - seafile-data:/shared
      - seahub-avatars:/shared/seafile/seahub-data/avatars
volumes:
  seafile-data:
    driver: glusterfs
    name: "seafile-data"
  seahub-avatars:
    driver: glusterfs
    name: "seafile-data/seafile/seahub-data/avatars"
"""


def test_a_plugin_driver_volume_takes_the_name_as_written() -> None:
    """Only Docker's ``local`` driver restricts volume names ("includes invalid characters for a local
    volume name"); a plugin driver gets the name as written, a GlusterFS sub-directory here."""
    spec = spec_of(load(GLUSTER), "seahub")
    assert [(m["source"], m.get("volume_driver")) for m in spec["mounts"]] == [
        ("seafile-data", "glusterfs"),
        ("seafile-data/seafile/seahub-data/avatars", "glusterfs"),
    ]


@pytest.mark.parametrize("driver", ["", "driver: local"])
def test_a_local_volume_name_with_a_slash_is_still_refused_naming_the_mount(driver: str) -> None:
    text = GLUSTER.replace(
        'driver: glusterfs\n    name: "seafile-data/', f'{driver}\n    name: "seafile-data/'
    )
    message = refusal(text)
    assert "services.seahub.volumes[1].source: invalid volume name" in message, message


def test_a_plugin_volume_name_with_a_colon_or_a_control_character_is_refused() -> None:
    for name in ("data:x", "data\\tx"):
        message = refusal(GLUSTER.replace("seafile-data/seafile/seahub-data/avatars", name))
        assert "services.seahub.volumes[1].source: invalid volume name" in message, message


# PrivateGPT's default mode: the services of the empty profile run when no profile is given.
PRIVATE_GPT = """
services:
  private-gpt-ollama:
    image: zylonai/private-gpt:0.6.2-ollama
    profiles: ["", ollama-cpu, ollama-cuda]
  ollama-cpu:
    image: ollama/ollama
    profiles: ["", ollama-cpu]
  ollama-cuda:
    image: ollama/ollama
    profiles: [ollama-cuda]
  always:
    image: busybox
"""


@pytest.mark.parametrize(
    ("profiles", "expected"),
    [
        ((), {"private-gpt-ollama", "ollama-cpu", "always"}),
        (("ollama-cuda",), {"private-gpt-ollama", "ollama-cuda", "always"}),
        (("*",), {"private-gpt-ollama", "ollama-cpu", "ollama-cuda", "always"}),
    ],
)
def test_the_empty_profile_is_active_when_no_profile_is_given(profiles: tuple[str, ...], expected) -> None:
    """docker compose reads ``COMPOSE_PROFILES`` when no ``--profile`` is given, and an unset variable
    splits to ``[""]``: a service with the profile ``""`` runs by default, and not once a profile is
    chosen (unless it names that profile too)."""
    definition = load_stack("gpt", PRIVATE_GPT, None, environ={}, profiles=profiles)
    assert {s.short_name for s in definition.services} == expected


# env_file merged under environment, as `docker compose config` prints it.
ENV_FILES = """
services:
  web:
    image: nginx
    env_file:
      - ./env/base.env
      - path: ./env/local.env
        required: false
      - path: ./env/raw.env
        format: raw
    environment:
      FROM_BOTH: environment
      PORT: 8080
      UNSET_HERE:
  plain:
    image: nginx
    environment: [X=1]
"""


def _write_env_project(tmp_path):
    project = tmp_path / "project"
    (project / "env").mkdir(parents=True)
    (project / "compose.yaml").write_text(ENV_FILES)
    (project / "env" / "base.env").write_text(
        'FROM_FILE=base\nFROM_BOTH=file\nUNSET_HERE=from-file\nOVERRIDDEN=base\nQUOTED="a b"\n'
    )
    (project / "env" / "raw.env").write_text("OVERRIDDEN=raw\nRAW='kept $quotes'\n")
    return project


def test_stack_config_prints_env_file_values_under_environment(tmp_path, monkeypatch, capsys) -> None:
    """compose-go's ``WithServicesEnvironmentResolved`` with ``WithDiscardEnvFile``: the files' values
    in order (a later file wins), ``environment`` over them, a missing ``required: false`` file skipped,
    ``format: raw`` taken as written, paths relative to the Compose file, and ``env_file`` dropped. A key
    ``environment`` names without a value, unset in the CLI's environment, overrides a file's value with
    none (printed ``null``; the task gets no such variable)."""
    project = _write_env_project(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("UNSET_HERE", raising=False)
    assert run(["stack", "config", "-c", "project/compose.yaml"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    web = printed["services"]["web"]
    assert "env_file" not in web
    assert web["environment"] == {
        "FROM_FILE": "base",
        "FROM_BOTH": "environment",
        "UNSET_HERE": None,
        "OVERRIDDEN": "raw",
        "QUOTED": "a b",
        "RAW": "'kept $quotes'",
        "PORT": "8080",
    }
    assert printed["services"]["plain"]["environment"] == {"X": "1"}
    assert run(["stack", "config", "--json", "-c", str(project / "compose.yaml")]) == 0
    assert json.loads(capsys.readouterr().out)["services"]["web"]["environment"] == web["environment"]


def test_the_spec_sent_holds_the_printed_environment_without_its_unset_keys(tmp_path, monkeypatch) -> None:
    """What ``stack config`` prints and what the deploy sends come from one mapping: the spec's ``env``
    is the printed ``environment`` less the keys without a value."""
    project = _write_env_project(tmp_path)
    monkeypatch.delenv("UNSET_HERE", raising=False)
    definition = stack_source([str(project / "compose.yaml")], environ={}).load("app")
    printed = definition.model["services"]["web"]["environment"]
    spec = spec_of(definition, "web")
    assert spec["env"] == {k: v for k, v in printed.items() if v is not None}
    assert "UNSET_HERE" not in ServiceSpec.from_dict(spec).env


# kerrickchan/docker-compose-mongo: mongo-setup links the members, which must run before it.
LINKS = """
services:
  mongo-setup:
    image: mongo:7.0.4
    links: [mongo, mongo2, "mongo3:third"]
    depends_on:
      mongo:
        condition: service_healthy
    restart: "no"
  mongo:
    image: mongo:7.0.4
    links: [mongo2]
  mongo2:
    image: mongo:7.0.4
  mongo3:
    image: mongo:7.0.4
  tools:
    image: busybox
    links: [debugger]
    depends_on: {debugger: {condition: service_started, required: false}}
  debugger:
    image: busybox
    profiles: [debug]
"""


def test_links_make_the_linked_services_dependencies_as_depends_on_does() -> None:
    """compose-go adds ``depends_on: {X: {condition: service_started}}`` for every link ``X[:ALIAS]``
    (unless the service already depends on X): the linked services are created and running first."""
    definition = load(LINKS)
    order = [s.short_name for s in definition.services]
    assert order.index("mongo2") < order.index("mongo") < order.index("mongo-setup")
    assert order.index("mongo3") < order.index("mongo-setup")
    waits = {s.short_name: [(d.service, d.condition) for d in s.depends_on] for s in definition.services}
    assert waits["mongo-setup"] == [
        ("mongo", "service_healthy"),  # its own depends_on is kept, not weakened by the link
        ("mongo2", "service_started"),
        ("mongo3", "service_started"),
    ]
    assert waits["mongo"] == [("mongo2", "service_started")]
    # debugger's profile is not active and tools does not require it: nothing to wait for (without
    # required: false the link is refused, as Compose refuses it: test_compose_spec_rows.py)
    assert waits["tools"] == []


def test_links_in_a_cycle_are_refused_like_depends_on() -> None:
    message = refusal(
        """
        services:
          a: {image: busybox, links: [b]}
          b: {image: busybox, depends_on: [a]}
        """
    )
    assert "circular dependency: " in message, message
