"""The twenty-first sample (docs/stack.md, "Twenty-first sample"): corpus sets modelled on public
projects' Compose files, read key by key as Compose and Swarm read them: Netdata's documented file on the
host network (before: warned, its task on the cluster network), an Elasticsearch stack with
``mem_swappiness``/``pull_policy`` (before: both ignored), Zulip's secrets declared by its override file,
Superset's env_file entries with ``required``, Chatwoot's anchored base service, NetBox's anchored build."""

from __future__ import annotations

from pathlib import Path

from p2porch.stack.rollout import deploy_waves
from p2porch.stack.source import stack_source

CORPUS = Path(__file__).parent / "corpus"


def corpus(app: str, main: str = "docker-compose.yml"):
    base = CORPUS / app
    listed = base / "files.txt"
    files = listed.read_text().split() if listed.exists() else [main]
    return stack_source([str(base / f) for f in files], environ={"HOME": "/home/user"}).load("x")


def specs(definition) -> dict[str, dict]:
    return {s.short_name: s.spec for s in definition.services}


def test_netdatas_documented_file_runs_in_its_nodes_network_namespace():
    definition = corpus("netdata-host-network")
    netdata = specs(definition)["netdata"]
    assert netdata["networks"] == [{"target": "host", "aliases": []}] and netdata["endpoint_mode"] == "dnsrr"
    assert not definition.networks  # no stack network is created for it
    assert netdata["container"]["cap_add"] == ["SYS_PTRACE", "SYS_ADMIN"]
    root = {m["target"]: m for m in netdata["mounts"]}["/host/root"]
    assert root["readonly"] and root["propagation"] == "rslave"
    warnings = "\n".join(definition.warnings)
    assert "host network (service netdata)" in warnings and "pid" not in warnings
    assert netdata["container"]["pid_mode"] == "host"  # its node's processes (session 50; ignored before)
    assert "container_name (service netdata)" not in warnings  # no alias on the host network


def test_the_elastic_stacks_swappiness_and_pull_policies():
    by = specs(corpus("elastic-swappiness"))
    master = by["es-master"]
    assert master["container"]["mem_swappiness"] == 0 and master["container"]["pull_policy"] == "always"
    assert master["limit_memory_bytes"] == 1024**3
    assert master["container"]["ulimits"] == {"memlock": {"soft": -1, "hard": -1}}
    assert master["env"]["node.name"] == "${HOSTNAME}"  # $$: the container's own variable
    assert "pull_policy" not in by["es-master-storage"].get("container", {})  # if_not_present: the default
    sources = {m["target"]: m["source"] for m in master["mounts"]}
    assert sources["/usr/share/elasticsearch/data"] == "x_es-master-volume"  # volumes_from


def test_zulips_secrets_come_from_the_override_files_environment_declarations():
    definition = corpus("zulip-env-secrets")
    by = specs(definition)
    assert [s["target"] for s in by["zulip"]["secrets"]] == [
        "/run/secrets/zulip__memcached_password",
        "/run/secrets/zulip__secret_key",
    ]  # the override's `secrets: []` adds none and removes none
    assert by["zulip"]["env"]["SETTING_EXTERNAL_HOST"] == "localhost.localdomain"
    assert by["zulip"]["publish"] == [{"target": 80, "published": 80, "protocol": "tcp"}]
    assert by["memcached"]["command"][2].startswith('echo "zulip@$HOSTNAME:$(cat $MEMCACHED_PASSWORD_FILE)"')


def test_supersets_env_files_and_init_service():
    definition = corpus("superset-env-files")
    by = specs(definition)
    assert by["db"]["env"]["POSTGRES_DB"] == "superset"  # the required file; the optional one is absent
    assert by["superset"]["image"] == "apachesuperset.docker.scarf.sh/apache/superset:latest-dev"
    assert by["superset-init"]["health"]["cmd"] == ["NONE"]
    assert by["superset-worker"]["health"]["cmd"][-1].endswith("celery@$HOSTNAME")
    waves = [w.wait_for for w in deploy_waves(definition)]
    assert waves[-1] == (("x-superset-init", "service_completed_successfully"),), waves


def test_chatwoots_base_anchor_and_netboxs_build_anchor():
    chatwoot = specs(corpus("chatwoot-base-anchor"))
    assert chatwoot["redis"]["command"] == ["sh", "-c", 'redis-server --requirepass "changeme"']  # from .env
    assert chatwoot["rails"]["mounts"][0]["target"] == "/app/storage"  # from the anchored base
    assert chatwoot["rails"]["publish"][0]["host_ip"] == "127.0.0.1"
    netbox = specs(corpus("netbox-build-anchor"))
    assert netbox["netbox"]["image"] == "ninech/netbox:latest"  # ${VERSION-latest}
    assert netbox["netbox-worker"]["entrypoint"] == ["python3", "/opt/netbox/netbox/manage.py"]
    assert netbox["nginx"]["publish"] == [
        {"target": 8080, "published": None, "protocol": "tcp", "mode": "ingress"}
    ]  # a port the cluster assigns
