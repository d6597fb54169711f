"""Constructs of the fourteenth real-world sample (docs/stack.md, "Fourteenth sample"), each reproduced by
a minimal hand-written file, and the leftovers of the thirteenth: ``sysctls`` values and a top-level
network's ``labels`` written with Python's ``str()`` of a float where compose-go writes Go's (``1e+06``),
and numbers with ``_`` separators (``1_000``), which go-yaml reads as numbers (it drops every ``_``
before parsing) where the loader kept them as text."""

from __future__ import annotations

import pytest
import yaml

from p2porch.stack.source import stack_source

from .compose_text import assert_resolves, load, refusal, spec_of
from .test_stack_cli_names import run

# compose-go reads sysctls and a network's labels into string maps, a float written by fmt.Sprint, as
# it writes environment and service labels (test_compose_thirteenth_sample.py).
SYSCTLS_AND_LABELS = """
services:
  web:
    image: nginx
    sysctls:
      net.core.somaxconn: 1024
      net.ipv4.tcp_keepalive_time: 1e6
      net.ipv4.tcp_fin_timeout: 30.0
      net.ipv4.tcp_syncookies: true
    networks: [back]
  list:
    image: nginx
    sysctls:
      - net.core.somaxconn=1024
networks:
  back:
    labels:
      ratio: 0.50
      big: 1e6
      whole: 2.0
      "on": true
"""


def test_sysctls_and_network_labels_write_numbers_as_compose_go_does() -> None:
    definition = load(SYSCTLS_AND_LABELS)
    web = spec_of(definition, "web")
    assert dict(web["container"]["sysctls"]) == {
        "net.core.somaxconn": "1024",
        "net.ipv4.tcp_keepalive_time": "1e+06",
        "net.ipv4.tcp_fin_timeout": "30",
        "net.ipv4.tcp_syncookies": "true",
    }
    assert dict(spec_of(definition, "list")["container"]["sysctls"]) == {"net.core.somaxconn": "1024"}
    back = {n.key: n for n in definition.networks}["back"]
    assert dict(back.labels) == {"ratio": "0.5", "big": "1e+06", "whole": "2", "on": "true"}


def test_stack_config_prints_sysctls_and_labels_as_the_spec_s_strings(tmp_path, capsys) -> None:
    """``docker compose config`` prints these string maps with strings; before, ``7.2e3`` was printed
    ``7200.0`` although the container got "7200"."""
    (tmp_path / "compose.yaml").write_text(
        "services:\n  web:\n    image: nginx\n    sysctls: {net.ipv4.tcp_keepalive_time: 7.2e3}\n"
        "    labels: {ratio: 0.50, big: 1_000}\n    deploy: {labels: {on: true}}\n"
    )
    assert run(["stack", "config", "-c", str(tmp_path / "compose.yaml")]) == 0
    web = yaml.safe_load(capsys.readouterr().out)["services"]["web"]
    assert web["sysctls"] == {"net.ipv4.tcp_keepalive_time": "7200"}
    assert web["labels"] == {"ratio": "0.5", "big": "1000"}
    assert web["deploy"]["labels"] == {"on": "true"}


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("services:\n  w:\n    image: nginx\n    sysctls: 5\n", "services.w.sysctls"),
        ("services:\n  w:\n    image: nginx\n    sysctls: {a: [1]}\n", "services.w.sysctls.a"),
        (
            "services:\n  w:\n    image: nginx\n    networks: [n]\n"
            "networks:\n  n:\n    labels: {a: {b: 1}}\n",
            "networks.n.labels.a",
        ),
    ],
)
def test_a_sysctl_or_network_label_that_is_no_scalar_is_refused_naming_it(text: str, field: str) -> None:
    assert field in refusal(text)


# go-yaml v3 (resolve.go): a plain scalar starting with a digit or sign loses every "_", then
# ParseInt(s, 0) (0x/0o/0b in either case, a sign before them, a leading 0 octal), then a YAML float.
@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1_000", 1000),
        ("-1_000", -1000),
        ("1__0", 10),
        ("1_", 1),
        ("01_23", 83),
        ("0x_1F", 31),
        ("0X1F", 31),
        ("-0x1F", -31),
        ("+0o17", 15),
        ("0O17", 15),
        ("0b1_0", 2),
        ("0B11", 3),
        ("1_0.5", 10.5),
        ("1_000e3", 1000000.0),
        ("_100", "_100"),
        (".5_0", ".5_0"),
        ("1_000abc", "1_000abc"),
        ("1_000:80", "1_000:80"),
    ],
)
def test_underscores_and_prefixes_resolve_as_go_yaml_resolves_them(text: str, value: object) -> None:
    assert_resolves(text, value)


UNDERSCORES = """
services:
  web:
    image: nginx
    environment:
      MAX_ROWS: 1_000_000
      LIST_FORM: "1_000"
    labels:
      limit: 10_000
    deploy:
      replicas: 1_0
      resources:
        limits: {pids: 1_024}
    stop_grace_period: 1m30s
"""


def test_a_number_with_underscores_is_the_number_go_yaml_reads() -> None:
    web = spec_of(load(UNDERSCORES), "web")
    assert web["env"] == {"MAX_ROWS": "1000000", "LIST_FORM": "1_000"}
    assert web["labels"]["limit"] == "10000"
    assert web["replicas"] == 10
    assert web["stop_grace_period_s"] == 90.0 and web["container"]["pids_limit"] == 1024


# The sample's constructs, checked right (each as compose-go reads it).


# skobkin's stacks: a service extends a service of another file, named by a variable (the `.env`
# beside the file picks the variant); the features file's services have no image of their own.
def test_extends_names_its_service_with_a_variable_from_the_env_file(tmp_path) -> None:
    (tmp_path / "compose.features.yml").write_text(
        "services:\n  default: {}\n"
        "  traefik_databases:\n    networks: [default, databases]\n"
        "    labels: {traefik.http.routers.a.rule: 'Host(`${TRAEFIK_HOST}`)'}\n"
        "networks:\n  databases: {external: true, name: '${DATABASES_NETWORK:-databases}'}\n"
    )
    (tmp_path / "docker-compose.yml").write_text(
        "services:\n  authelia:\n"
        "    extends: {file: ./compose.features.yml, service: '${COMPOSE_VARIANT:-traefik}'}\n"
        "    image: authelia/authelia:4\n    env_file: .env\n"
        "networks:\n  databases: {external: true, name: '${DATABASES_NETWORK:-databases}'}\n"
    )
    (tmp_path / ".env").write_text("COMPOSE_VARIANT=traefik_databases\nTRAEFIK_HOST=auth.example.org\n")
    definition = stack_source([str(tmp_path / "docker-compose.yml")], environ={}).load("app")
    spec = {s.short_name: s.spec for s in definition.services}["authelia"]
    assert [n["target"] for n in spec["networks"]] == ["app_default", "databases"]
    assert spec["labels"]["traefik.http.routers.a.rule"] == "Host(`auth.example.org`)"
    assert spec["env"]["COMPOSE_VARIANT"] == "traefik_databases"


# kevin197011's JumpServer: a published range of 101 ports; skobkin's LiveKit: a range with a host
# address, its ends from variables.
def test_port_ranges_publish_each_port() -> None:
    text = """
    services:
      magnus:
        image: jumpserver/jms_magnus
        ports:
          - "30000-30100:30000-30100"
          - "0.0.0.0:${START:-50000}-${END:-50002}:${START:-50000}-${END:-50002}/udp"
    """
    publish = spec_of(load(text), "magnus")["publish"]
    assert [p["published"] for p in publish[:101]] == list(range(30000, 30101))
    udp = [(p["target"], p["protocol"]) for p in publish[101:]]
    assert udp == [(50000, "udp"), (50001, "udp"), (50002, "udp")]


# JackieTreeh0rn's Swarm stacks: an anchor on its own line before the mapping it names, a logging
# mapping shared by every service, `tag: "{{.Name}}"` kept for the engine.
def test_an_anchor_on_its_own_line_names_the_mapping_below_it() -> None:
    text = """
    x-logging:
      &default-logging
      driver: "json-file"
      options: {max-size: "1m", max-file: "1", tag: "{{.Name}}"}
    services:
      dozzle:
        image: amir20/dozzle
        logging: *default-logging
    """
    container = spec_of(load(text), "dozzle")["container"]
    assert container["log_driver"] == "json-file"
    assert container["log_opts"] == {"max-size": "1m", "max-file": "1", "tag": "{{.Name}}"}


# Refused rightly, as Compose refuses them: an extra host without an address (a commented-out
# `cap_add:` whose items fell into `extra_hosts`), a network mode that names no mode (`service_gluetun`),
# and a required variable of a service whose profile is off (compose-go interpolates the whole file
# before it applies profiles).
@pytest.mark.parametrize(
    ("text", "field", "words"),
    [
        (
            "services:\n  p:\n    image: pihole/pihole\n"
            "    extra_hosts: ['nas.lan:10.0.1.10', CAP_SYS_TIME]\n",
            "services.p.extra_hosts[1]",
            "expected HOST:IP",
        ),
        (
            "services:\n  g:\n    image: qmcgaw/gluetun\n"
            "  t:\n    image: tunarr\n    network_mode: service_gluetun\n",
            "services.t.network_mode",
            "service:NAME",
        ),
        (
            "services:\n  s:\n    image: slack-bridge\n    profiles: [slack]\n"
            "    environment: {ID: '${SLACK_ID:?set it}'}\n",
            "services.s.environment.ID",
            "required variable SLACK_ID is not set",
        ),
    ],
)
def test_what_compose_refuses_is_refused_naming_the_field(text: str, field: str, words: str) -> None:
    message = refusal(text)
    assert field in message and words in message, message
