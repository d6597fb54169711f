"""Constructs of the twenty-fourth real-world sample (docs/stack.md, "Twenty-fourth sample"), read key by key
against what Compose and Docker make of them: published ports whose host address comes from a variable's
default, a default written as ``""`` inside the braces, workers replicated on the host network, Swarm
services pinned by ``node.hostname`` with a quoted flag inside a command string, a mapping-form environment
key written with its value (``A=b:``: refused before, while Compose and Swarm send it to the engine, which
sets A=b), and a file of the version 1 format (refused, as docker compose v2 refuses it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from p2porch.model import ServiceSpec
from p2porch.stack import ComposeError
from p2porch.stack.source import stack_source

CORPUS = Path(__file__).parent / "corpus"


def corpus(name: str, environ: dict[str, str] | None = None):
    return stack_source(
        [str(CORPUS / name / "docker-compose.yml")], environ={"HOME": "/home/user", **(environ or {})}
    ).load("x")


def specs(definition) -> dict[str, dict]:
    got = {s.short_name: s.spec for s in definition.services}
    for spec in got.values():
        ServiceSpec.from_dict(spec)  # what the daemon validates again
    return got


def test_billionmail_host_address_and_port_come_from_defaults():
    got = specs(corpus("billionmail-ports-in-defaults"))
    # "${SQL_PORT:-127.0.0.1:25432}:5432": the default carries the host address, as Compose reads it
    assert got["pgsql"]["publish"] == [
        {"host_ip": "127.0.0.1", "protocol": "tcp", "published": 25432, "target": 5432}
    ]
    assert got["redis"]["publish"][0]["host_ip"] == "127.0.0.1"
    # "${HTTP_PORT:-80}:${HTTP_PORT:-80}" with HTTPS_PORT=8443 in .env: the same value on both sides
    assert [(p["published"], p["target"]) for p in got["core"]["publish"]] == [(80, 80), (8443, 8443)]
    # a user's exported variable beats both the default and .env
    exported = specs(
        corpus("billionmail-ports-in-defaults", {"SQL_PORT": "10.1.2.3:5433", "HTTPS_PORT": "443"})
    )
    assert exported["pgsql"]["publish"][0] == {
        "host_ip": "10.1.2.3",
        "protocol": "tcp",
        "published": 5433,
        "target": 5432,
    }
    assert exported["core"]["publish"][1]["published"] == 443


def test_billionmail_ulimits_sysctls_and_network():
    definition = corpus("billionmail-ports-in-defaults")
    got = specs(definition)
    # nproc: 65535 is both limits; nofile keeps its own soft and hard
    assert got["dovecot"]["container"]["ulimits"] == {
        "nproc": {"soft": 65535, "hard": 65535},
        "nofile": {"soft": 20000, "hard": 40000},
    }
    assert got["redis"]["container"]["sysctls"] == {"net.core.somaxconn": "4096"}
    assert got["redis"]["entrypoint"] == ["/bin/sh", "/redis-conf.sh"]
    assert got["dovecot"]["env"] == {"RETENTION_DAYS": "7"}
    assert got["core"]["container"]["cap_add"] == ["NET_BIND_SERVICE", "NET_ADMIN", "NET_RAW"]
    assert got["core"]["mounts"][0]["readonly"] is True
    for name in ("pgsql", "redis", "dovecot", "core"):
        assert got[name]["networks"] == [{"target": "x_mail-net", "aliases": [name]}]
    warnings = "\n".join(definition.warnings)
    assert (
        "ignoring networks.mail-net.ipam" in warnings and "ignoring networks.mail-net.driver_opts" in warnings
    )
    waits = {s.short_name: [(d.service, d.condition) for d in s.depends_on] for s in definition.services}
    assert waits["dovecot"] == [("pgsql", "service_started"), ("redis", "service_started")]


def test_label_studio_quoted_default_stays_two_quote_characters():
    definition = corpus("label-studio-quoted-default")
    got = specs(definition)
    # ${VAR:-""} in list-form environment: compose-go gives the two characters "" (no quote removal there)
    assert got["app"]["env"]["LABEL_STUDIO_HOST"] == '""'
    assert got["app"]["env"]["POSTGRE_PASSWORD"] == ""  # "KEY=" is an empty value, not an unset one
    assert got["app"]["image"] == "heartexlabs/label-studio:latest"
    assert got["db"]["mounts"][0]["source"] == str(CORPUS / "label-studio-quoted-default/postgres-data")
    assert got["nginx"]["mounts"][1]["source"].endswith("/deploy/nginx/default.conf")
    assert got["nginx"]["command"] == ["nginx", "-g", "daemon off;"]
    # the {} volume is one named volume for both services
    assert {m["source"] for s in ("app", "nginx") for m in got[s]["mounts"] if m["type"] == "volume"} == {
        "x_static"
    }
    warnings = "\n".join(definition.warnings)
    assert "ignoring build (service app)" in warnings and "ignoring tty (service app)" in warnings


def test_postal_workers_replicate_on_the_host_network_and_the_runner_waits_for_its_profile():
    definition = corpus("postal-host-workers")
    got = specs(definition)
    assert sorted(got) == ["smtp", "web", "worker"]
    assert all(s["networks"] == [{"target": "host", "aliases": []}] for s in got.values())
    assert got["worker"]["replicas"] == 2 and got["worker"]["command"] == ["postal", "worker"]
    assert got["smtp"]["container"]["cap_add"] == ["NET_BIND_SERVICE"]
    assert "services runner skipped" in "\n".join(definition.warnings)
    with_tools = stack_source(
        [str(CORPUS / "postal-host-workers/docker-compose.yml")], profiles=["tools"], environ={}
    ).load("x")
    assert "runner" in {s.short_name for s in with_tools.services}


def test_dgraph_constraints_by_hostname_and_the_quoted_flag():
    got = specs(corpus("dgraph-hostname-pinned"))
    assert got["zero1"]["constraints"] == ["node.hostname==host1"]
    assert got["alpha1"]["constraints"] == ["node.hostname==host1"]
    assert got["zero2"]["constraints"] == ["node.hostname==host2"]
    assert got["ratel"]["constraints"] == []
    # --raft="idx=1" in a command string: the shell's quote removal, as Compose splits it
    assert got["zero1"]["command"][-1] == "--raft=idx=1"
    assert got["zero2"]["command"][:4] == ["dgraph", "zero", "-o", "1"]
    # one volume name, the stack's: each node's tasks get that node's volume
    assert {got[s]["mounts"][0]["source"] for s in ("zero1", "zero2", "alpha1")} == {"x_data-volume"}
    assert got["alpha1"]["container"]["hostname"] == "alpha1"


def test_a_version_1_file_is_refused_with_the_hint(tmp_path):
    # motioneye's extra/docker-compose.yml: services at the top level (docker compose v2 refuses it too)
    (tmp_path / "docker-compose.yml").write_text(
        'motioneye:\n  image: motioneye\n  environment:\n    - TIMEZONE="Pacific/Auckland"\n'
        "  ports:\n    - 8081:8081\n  restart: always\n"
    )
    with pytest.raises(ComposeError) as info:
        stack_source([str(tmp_path / "docker-compose.yml")], environ={}).load("x")
    assert "a file of the version 1 format? put the services under services:" in info.value.message


def test_ldap_admin_environment_key_written_with_its_value():
    definition = corpus("ldap-admin-env-key")
    got = specs(definition)
    # `PHPLDAPADMIN_HTTPS=false:` (null): Compose sends the key as is, the engine sets the variable
    assert got["openldap-admin"]["env"] == {
        "PHPLDAPADMIN_HTTPS": "false",
        "PHPLDAPADMIN_LDAP_HOSTS": "openldap",
    }
    assert got["openldap"]["env"]["LDAP_LOG_LEVEL"] == "256"
    assert got["openldap-seed"]["entrypoint"] == ["sh", "-c", "/ldif_files/addAll.sh"]
    waits = {s.short_name: [d.service for d in s.depends_on] for s in definition.services}
    assert waits == {
        "registry": [],
        "openldap": ["registry"],
        "openldap-seed": ["openldap"],
        "openldap-admin": ["openldap"],
    }


def _env(tmp_path, text: str, environ: dict[str, str] | None = None) -> dict[str, str]:
    (tmp_path / "compose.yaml").write_text(text)
    definition = stack_source([str(tmp_path / "compose.yaml")], environ=environ or {}).load("x")
    return specs(definition)["app"]["env"]


def test_a_mapping_key_holding_equals_is_split_as_the_engine_splits_it(tmp_path):
    text = "services:\n  app:\n    image: busybox\n    environment:\n      MODE=fast:\n      OPTS=a: b=c\n"
    # null: the engine gets "MODE=fast"; with a value: "OPTS=a=b=c", split at the first "="
    assert _env(tmp_path, text) == {"MODE": "fast", "OPTS": "a=b=c"}
    # Compose looks the whole key up ("MODE=fast", never set): an exported MODE changes nothing
    assert _env(tmp_path, text, {"MODE": "slow"})["MODE"] == "fast"


def test_a_mapping_key_with_no_name_before_equals_stays_refused(tmp_path):
    (tmp_path / "compose.yaml").write_text(
        "services:\n  app:\n    image: busybox\n    environment:\n      =x:\n"
    )
    with pytest.raises(ComposeError) as info:
        stack_source([str(tmp_path / "compose.yaml")], environ={}).load("x")
    assert "services.app.environment.=x: invalid variable name ''" in info.value.message
