"""Constructs of the twenty-third real-world sample (docs/stack.md, "Twenty-third sample"), read key by key
against what Compose and Docker make of them: eBPF instrumenters in their application's network and PID
namespaces and a certificate renewer in a proxy's PID namespace (``pid: service:X``: ignored before, so
Beyla saw no application process and certbot could not signal HAProxy), a PID namespace that cannot be
joined (its owner is on the host network), an inline nginx configuration beside a one-shot job, and an
included Temporal stack tagged from its own ``env_file``."""

from __future__ import annotations

from pathlib import Path

from p2porch.agent.dockerspec import member_create_request
from p2porch.agent.model import TaskAssignment
from p2porch.member.views import group_members
from p2porch.model import ServiceSpec
from p2porch.stack.source import stack_source

CORPUS = Path(__file__).parent / "corpus"


def corpus(name: str):
    base = CORPUS / name
    main = next(f for f in ("compose.yaml", "docker-compose.yml") if (base / f).exists())
    return stack_source([str(base / main)], environ={"HOME": "/home/user"}).load("x")


def specs(definition) -> dict[str, dict]:
    return {s.short_name: s.spec for s in definition.services}


def member_bodies(spec: dict) -> dict[str, dict]:
    """Each group member's engine create body (``HostConfig``), the main container's id ``m1``."""
    members = group_members(ServiceSpec.from_dict(spec))
    task = TaskAssignment("t1", spec["name"], "s1", 1, "n1", spec["image"], members=members)
    return {m.name: member_create_request(task, m, "m1")[1]["HostConfig"] for m in members}


def test_each_beyla_runs_in_its_applications_network_and_pid_namespaces():
    definition = corpus("beyla-greeting-sidecars")
    got = specs(definition)
    assert sorted(got) == ["agent", "gotestserver", "nginx"]
    (beyla,) = got["nginx"]["sidecars"]
    assert beyla["name"] == "nginxbeyla" and beyla["pid"] == "main" and beyla["privileged"] is True
    assert beyla["env"] == {"BEYLA_OPEN_PORT": "3330", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://agent:4018"}
    host = member_bodies(got["nginx"])["nginxbeyla"]
    assert (host["PidMode"], host["NetworkMode"], host["Privileged"]) == (
        "container:m1",
        "container:m1",
        True,
    )
    assert got["gotestserver"]["sidecars"][0]["pid"] == "main"
    assert "ignoring pid" not in "\n".join(definition.warnings)


def test_certbot_joins_haproxys_task_and_keeps_its_name_and_its_mount():
    definition = corpus("certbot-haproxy-pid")
    haproxy = specs(definition)["haproxy"]
    (certbot,) = haproxy["sidecars"]
    assert certbot["pid"] == "main" and certbot["name"] == "certbot-haproxy"
    assert certbot["env"] == {"EMAIL": "ops@example.com", "DOMAINS": "domain1.com domain2.com"}
    assert [(m["target"], m["readonly"]) for m in certbot["mounts"]] == [("/etc/letsencrypt", False)]
    assert haproxy["networks"] == [{"target": "x_default", "aliases": ["certbot-haproxy"]}]
    assert member_bodies(haproxy)["certbot-haproxy"]["PidMode"] == "container:m1"


def test_a_pid_namespace_on_the_host_network_stays_ignored_saying_why():
    definition = corpus("keepalived-haproxy-pid")
    assert sorted(specs(definition)) == ["haproxy", "keepalived"]
    assert (
        "ignoring pid: service:keepalived (service haproxy): keepalived is on the host network"
        in "\n".join(definition.warnings)
    )
    assert specs(definition)["haproxy"]["publish"] == [{"target": 8080, "published": 80, "protocol": "tcp"}]


def test_solarpanels_inline_config_and_its_one_shot_job():
    definition = corpus("solarpanel-inline-config")
    (config,) = definition.objects
    assert (config.kind, config.source) == ("config", "content")
    assert (
        "try_files $uri $uri/ =404;" in config.value and "$document_root$fastcgi_script_name" in config.value
    )
    got = specs(definition)
    assert got["app_init"]["restart"]["condition"] == "none"  # restart: "no": it runs once
    waits = {s.short_name: [(d.service, d.condition) for d in s.depends_on] for s in definition.services}
    assert waits["nginx"] == [("app_init", "service_completed_successfully")]
    assert waits["php"] == [("app_init", "service_completed_successfully"), ("mysql", "service_healthy")]
    assert got["mysql"]["health"]["cmd"][1].endswith("-p$MYSQL_ROOT_PASSWORD --silent")
    assert got["nginx"]["configs"][0]["target"] == "/etc/nginx/conf.d/default.conf"


def test_neosyncs_included_temporal_stack_is_tagged_from_its_env_file():
    definition = corpus("neosync-include-env-file")
    got = specs(definition)
    assert got["temporal"]["image"] == "temporalio/auto-setup:1.26.2"
    assert got["postgresql"]["image"] == "postgres:13"
    assert got["temporal"]["mounts"][0]["source"] == str(
        CORPUS / "neosync-include-env-file/temporal/dynamicconfig"
    )
    assert [n["target"] for n in got["api"]["networks"]] == ["neosync-network", "temporal-network"]
    warnings = "\n".join(definition.warnings)
    assert (
        "ignoring develop (service api)" in warnings
        and "ignoring depends_on restart (service api)" in warnings
    )
