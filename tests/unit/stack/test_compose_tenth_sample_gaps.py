"""The three gaps the tenth real-world sample left (docs/stack.md, "Tenth sample"), each on a minimal
hand-written file: ``stack config`` printing the ``depends_on`` entries ``links`` and ``volumes_from``
imply and ``label_file`` labels under ``labels``, as ``docker compose config`` does, and a refused
top-level network reported once, not again as "not declared" for every service using it."""

from __future__ import annotations

import json

import pytest
import yaml

from p2porch.errors import ConfigError
from p2porch.stack.source import stack_source

from .compose_text import load, refusal
from .test_stack_cli_names import run

# The MongoDB replica-set shape: a setup service linking the members and mounting a data service.
IMPLIED = """
services:
  mongo1: {image: mongo}
  mongo2: {image: mongo}
  data:
    image: busybox
    volumes: [/srv/data:/data]
  later: {image: busybox, profiles: [later]}
  setup:
    image: mongo
    links: [mongo1, "mongo2:second"]
    volumes_from: ["data:ro", "container:outside"]
    depends_on:
      mongo2: {condition: service_healthy}
  sidecar:
    image: busybox
    network_mode: service:mongo1
"""


def _printed(tmp_path, capsys, text: str, *flags: str) -> dict:
    (tmp_path / "compose.yaml").write_text(text)
    assert run(["stack", "config", *flags, "-c", str(tmp_path / "compose.yaml")]) == 0
    out = capsys.readouterr().out
    return json.loads(out) if "--json" in flags else yaml.safe_load(out)


def test_stack_config_prints_the_depends_on_entries_links_and_volumes_from_imply(tmp_path, capsys) -> None:
    """compose-go's normalisation: a link adds ``{condition: service_started, restart: true, required:
    true}``, a ``volumes_from`` service the same without ``restart`` (false is not printed), a
    ``service:`` network mode as a link; an entry the file gives is kept (and printed in the long form,
    ``required: true`` by default); ``container:`` adds none (a link to a service an inactive profile
    dropped is refused: test_compose_spec_rows.py)."""
    services = _printed(tmp_path, capsys, IMPLIED)["services"]
    started = {"condition": "service_started", "required": True}
    assert services["setup"]["depends_on"] == {
        "mongo2": {"condition": "service_healthy", "required": True},
        "mongo1": {**started, "restart": True},
        "data": started,
    }
    assert list(services["setup"]["depends_on"]["mongo1"]) == ["condition", "restart", "required"]
    assert services["sidecar"]["depends_on"] == {"mongo1": {**started, "restart": True}}
    assert "depends_on" not in services["mongo1"] and "later" not in services
    assert (
        _printed(tmp_path, capsys, IMPLIED, "--json")["services"]["setup"]["depends_on"]
        == (services["setup"]["depends_on"])
    )


def test_the_printed_dependencies_are_the_ones_the_deploy_waits_for(tmp_path, capsys) -> None:
    """What is printed loads again to the same stack: the same services waiting for the same ones."""
    printed = _printed(tmp_path, capsys, IMPLIED)
    again = load(yaml.safe_dump(printed, sort_keys=False))
    first = load(IMPLIED)
    waits = {s.short_name: sorted(d.service for d in s.depends_on) for s in first.services}
    assert {s.short_name: sorted(d.service for d in s.depends_on) for s in again.services} == waits
    assert waits["setup"] == ["data", "mongo1", "mongo2"]


LABELS = """
services:
  web:
    image: nginx
    label_file: [./labels/one.labels, ./labels/two.labels]
    labels: [c=own, d=4]
  plain:
    image: nginx
    labels: [x=1]
"""


def _label_project(tmp_path):
    (tmp_path / "labels").mkdir()
    (tmp_path / "labels" / "one.labels").write_text("a=1\nb=one\n")
    (tmp_path / "labels" / "two.labels").write_text("b=two\nc=two\n")
    return tmp_path


def test_stack_config_prints_label_file_labels_under_labels(tmp_path, capsys) -> None:
    """compose-go's ``WithServicesLabelsResolved`` with ``WithDiscardEnvFile``: the files' labels in
    order (a later file wins), ``labels`` over them, paths relative to the Compose file, and
    ``label_file`` dropped; a service without ``label_file`` is printed as before."""
    services = _printed(_label_project(tmp_path), capsys, LABELS)["services"]
    assert "label_file" not in services["web"]
    assert services["web"]["labels"] == {"a": "1", "b": "two", "c": "own", "d": "4"}
    assert services["plain"]["labels"] == {"x": "1"}
    printed = _printed(tmp_path, capsys, LABELS, "--json")["services"]["web"]["labels"]
    assert printed == services["web"]["labels"]
    definition = stack_source([str(tmp_path / "compose.yaml")], environ={}).load("app")
    spec = {s.short_name: s.spec for s in definition.services}["web"]
    assert {k: v for k, v in spec["labels"].items() if not k.startswith("p2porch.")} == printed


def test_stack_config_refuses_a_missing_label_file_naming_the_field(tmp_path) -> None:
    (tmp_path / "compose.yaml").write_text(LABELS)
    with pytest.raises(ConfigError) as info:  # the CLI exits with 2
        run(["stack", "config", "-c", str(tmp_path / "compose.yaml")])
    assert info.value.field == "services.web.label_file[0]", info.value.field
    assert "one.labels" in info.value.message


# HBP's RAW deploy: a classic standalone-Swarm file naming a node-scoped network.
NODE_SCOPED = """
services:
  web: {image: nginx, networks: [net-local]}
  db:
    image: postgres
    networks:
      net-local: {aliases: [database]}
networks:
  net-local:
    external: {name: "node1/mip_net-local"}
"""


def test_a_refused_network_is_reported_once_not_as_undeclared_for_each_service() -> None:
    message = refusal(NODE_SCOPED)
    assert message.splitlines() == [
        "networks.net-local.name: 'node1/mip_net-local' is not a network name (1-63 letters, digits, "
        "'_', '.', '-')"
    ], message


def test_a_network_no_file_declares_is_still_reported_for_the_service() -> None:
    text = NODE_SCOPED.replace("networks: [net-local]", "networks: [net-local, nowhere]")
    message = refusal(text)
    assert "services.web.networks.nowhere: network is not declared in the top-level networks" in message
    assert "services.web.networks.net-local" not in message and "services.db" not in message


def test_the_cli_reports_the_one_problem(tmp_path) -> None:
    (tmp_path / "compose.yaml").write_text(NODE_SCOPED)
    with pytest.raises(ConfigError) as info:
        run(["stack", "config", "-c", str(tmp_path / "compose.yaml")])
    assert info.value.field == "networks.net-local.name"
    assert "not declared" not in info.value.message and "1 problem" in info.value.message


def test_a_refused_top_level_volume_is_reported_once_not_as_undeclared_for_the_service() -> None:
    message = refusal(
        """
        services:
          web: {image: nginx, volumes: ["data:/data"]}
        volumes:
          data: {driver: local, external: true}
        """
    )
    assert message.splitlines() == [
        "volumes.data.driver: an external volume already exists: it has no driver or driver_opts here"
    ], message
    assert "not declared" in refusal("services: {web: {image: nginx, volumes: ['nowhere:/data']}}")
