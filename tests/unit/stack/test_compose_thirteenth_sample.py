"""Constructs of the thirteenth real-world sample (docs/stack.md, "Thirteenth sample"), each reproduced by
a minimal hand-written file: the ones its Swarm stacks and database clusters rely on (checked right),
and the gaps it found: an unquoted ``0123`` in an environment or label mapping kept as text where
compose-go reads go-yaml's octal 83, a float written Python's way (``1.0``) where compose-go writes Go's
(``1``), and a container host name with an underscore (``node_exporter-{{.Node.Hostname}}``) refused
although Docker takes it."""

from __future__ import annotations

import pytest

from p2porch.stack.values import go_float_text

from .compose_text import assert_resolves, load, refusal, spec_of

# The leading-zero question: go-yaml (v3, and compose-go's v4) resolves a plain scalar with Go's
# ParseInt(s, 0): a leading zero is octal, and compose-go writes the number with fmt.Sprint, so
# `PIN: 0123` reaches the container as PIN=83 (quote it to keep 0123). With an 8 or 9 it is no octal
# integer but a float (189.0, written "189"). The list form is a string, kept as written.
LEADING_ZEROS = """
services:
  web:
    image: nginx
    environment:
      PIN: 0123
      NEG: -0123
      PIN8: 0189
      QUOTED: "0123"
      ZERO: 0
      OCT: 0o17
      HEX: 0x1F
    labels:
      pin: 0123
      pin8: 0189
  web2:
    image: nginx
    environment:
      - PIN=0123
    labels:
      - pin=0123
"""


def test_a_leading_zero_in_a_mapping_value_is_octal_as_compose_go_reads_it() -> None:
    definition = load(LEADING_ZEROS)
    web = spec_of(definition, "web")
    assert web["env"] == {
        "PIN": "83",
        "NEG": "-83",
        "PIN8": "189",
        "QUOTED": "0123",
        "ZERO": "0",
        "OCT": "15",
        "HEX": "31",
    }
    assert {"pin": "83", "pin8": "189"}.items() <= web["labels"].items()
    web2 = spec_of(definition, "web2")
    assert web2["env"] == {"PIN": "0123"}
    assert web2["labels"]["pin"] == "0123"


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("0123", 83),
        ("+017", 15),
        ("-0123", -83),
        ("00", 0),
        ("0189", 189.0),
        ("09", 9.0),
        ("0", 0),
        ("123", 123),
        ("0o17", 15),
        ("0x1F", 31),
        ("0123abc", "0123abc"),
        ("01:30", "01:30"),
        ("08.5", 8.5),
    ],
)
def test_plain_numbers_resolve_as_go_yaml_resolves_them(text: str, value: object) -> None:
    assert_resolves(text, value)


# compose-go writes a YAML float into a string field (environment, labels...) with Go's fmt.Sprint:
# the shortest digits, no trailing ".0", an exponent from 1e+06 on and below 1e-04.
FLOATS = """
services:
  web:
    image: nginx
    environment:
      ONE: 1.0
      MILLION: 1e6
      BIG: 100000.0
      SMALL: 1.5e-7
      FEED_RELEASE: 24.10
    labels:
      ratio: 2.50
"""


def test_a_float_in_a_string_field_is_written_as_compose_go_writes_it() -> None:
    web = spec_of(load(FLOATS), "web")
    assert web["env"] == {
        "ONE": "1",
        "MILLION": "1e+06",
        "BIG": "100000",
        "SMALL": "1.5e-07",
        "FEED_RELEASE": "24.1",
    }
    assert web["labels"]["ratio"] == "2.5"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1.0, "1"),
        (1e6, "1e+06"),
        (123456.0, "123456"),
        (1234567.0, "1.234567e+06"),
        (0.0001, "0.0001"),
        (0.00001, "1e-05"),
        (-2.5, "-2.5"),
        (0.0, "0"),
        (-0.0, "-0"),
        (1e21, "1e+21"),
        (1e100, "1e+100"),
        (0.1 + 0.2, "0.30000000000000004"),
        (float("inf"), "+Inf"),
        (float("-inf"), "-Inf"),
        (float("nan"), "NaN"),
    ],
)
def test_go_float_text_is_go_s_fmt_sprint(value: float, text: str) -> None:
    assert go_float_text(value) == text


# devops-e3-ops' Swarm monitoring stack: a node template after a name with an underscore. Docker
# dropped its host name check (1.13), Swarm never had one, the Compose schema has none.
def test_a_host_name_with_an_underscore_and_a_template_is_taken() -> None:
    text = """
    services:
      node_exporter:
        image: prom/node-exporter:latest
        hostname: node_exporter-{{.Node.Hostname}}
      plain:
        image: nginx
        hostname: db_primary.internal
    """
    definition = load(text)
    assert spec_of(definition, "node_exporter")["container"]["hostname"] == "node_exporter-{{.Node.Hostname}}"
    assert spec_of(definition, "plain")["container"]["hostname"] == "db_primary.internal"


@pytest.mark.parametrize("hostname", ["-x", "a b", "x-", "a/b"])
def test_a_host_name_that_is_no_name_is_still_refused(hostname: str) -> None:
    message = refusal(f"services:\n  w:\n    image: nginx\n    hostname: '{hostname}'\n")
    assert "hostname" in message and "is not a valid host name" in message, message


# The same stack's other forms: a network whose driver is null, a fractional size, an external config
# whose name comes from a variable, global mode with a restart window.
MONITOR = """
networks:
  monitoring:
    driver:
configs:
  prometheus.yml:
    name: ${PROMETHEUS_CONFIG_NAME}
    external: true
services:
  prometheus:
    image: prom/prometheus:latest
    configs:
      - {source: prometheus.yml, target: /etc/prometheus/prometheus.yml}
    deploy:
      mode: global
      restart_policy: {condition: on-failure, delay: 5s, max_attempts: 3, window: 30s}
      resources:
        limits: {cpus: "0.5", memory: 0.5G}
    networks: [monitoring]
"""


def test_a_null_driver_a_fractional_size_and_a_variable_config_name() -> None:
    definition = load(MONITOR, {"PROMETHEUS_CONFIG_NAME": "prometheus.yml3"})
    spec = spec_of(definition, "prometheus")
    assert spec["mode"] == "global"
    assert spec["limit_memory_bytes"] == 1 << 29
    assert spec["limit_cpu_nanos"] == 500_000_000
    assert spec["restart"]["window_s"] == 30.0 and spec["restart"]["max_attempts"] == 3
    assert [c["source"] for c in spec["configs"]] == ["prometheus.yml3"]
    assert spec["configs"][0]["target"] == "/etc/prometheus/prometheus.yml"


# TiDB's Swarm file: the stack's default network redeclared as an attachable overlay, a task template
# in the environment, $$ kept for the shell of an entrypoint.
TIDB = """
networks:
  default:
    driver: overlay
    attachable: true
services:
  tikv:
    image: pingcap/tikv:latest
    ports:
      - {target: 20160, published: 20160}
    environment:
      - TASK_SLOT={{.Task.Slot}}
    entrypoint: ["/bin/sh", "-c", "/tikv-server --addr=$$HOSTNAME:20160 --data-dir=/d/tikv$$TASK_SLOT"]
    deploy:
      replicas: 3
      restart_policy: {condition: on-failure}
"""


def test_tidb_s_swarm_file_keeps_its_task_template_and_shell_variables() -> None:
    spec = spec_of(load(TIDB), "tikv")
    assert spec["env"] == {"TASK_SLOT": "{{.Task.Slot}}"}
    assert spec["entrypoint"][2] == "/tikv-server --addr=$HOSTNAME:20160 --data-dir=/d/tikv$TASK_SLOT"
    assert spec["replicas"] == 3
    assert [n["target"] for n in spec["networks"]] == ["app_default"]
