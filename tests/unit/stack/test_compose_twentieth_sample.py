"""Constructs of the twentieth real-world sample (docs/stack.md, "Twentieth sample"), checked key by key
against what Compose and Swarm make of them: ``logging`` options without a driver go to the node engine's
default driver (before: p2porch set ``json-file``, which a node whose daemon logs to ``journald`` or
``local`` does not use for its other containers), ``memswap_limit`` limits memory plus swap (before:
ignored with a warning, so a task could swap), a ``volume.subpath`` is the mount's subpath (refused until
session 50), and the sample's shapes (a block-scalar environment entry, three layered files in a
subdirectory merging two anchors at once, a kitchen-sink file of the newest keys, a Swarm monitoring stack
with file configs and a ``{{.Node.ID}}`` template, a hybrid-swarm Traefik stack on Swarm's ``bridge``
network)."""

from __future__ import annotations

from pathlib import Path

from p2porch.stack.rollout import deploy_waves
from p2porch.stack.source import stack_source

from .compose_text import load, refusal, spec_of

CORPUS = Path(__file__).parent / "corpus"


def corpus(app: str):
    base = CORPUS / app
    listed = base / "files.txt"
    files = listed.read_text().split() if listed.exists() else ["docker-compose.yml"]
    return stack_source([str(base / f) for f in files], environ={"HOME": "/home/user"}).load("x")


def specs(definition) -> dict[str, dict]:
    return {s.short_name: s.spec for s in definition.services}


def test_logging_options_without_a_driver_are_the_engines_default_drivers():
    definition = load(
        """
        services:
          kms:
            image: kurento/kurento-media-server:6.15.0
            logging:
              options:
                max-size: "${DOCKER_LOGS_MAX_SIZE:-100M}"
          syslog:
            image: busybox
            logging: {driver: syslog, options: {tag: "{{.Name}}"}}
        """
    )
    # Compose and Swarm send LogConfig {Type: "", Config: {max-size: 100M}}: the daemon's log-driver
    assert spec_of(definition, "kms")["container"] == {"log_opts": {"max-size": "100M"}}
    assert spec_of(definition, "syslog")["container"] == {
        "log_driver": "syslog",
        "log_opts": {"tag": "{{.Name}}"},
    }


def test_openvidus_host_networked_media_stack():
    definition = corpus("openvidu-logging-options")
    by = specs(definition)
    kms = by["kms"]
    assert kms["image"] == "kurento/kurento-media-server:6.15.0"  # ${KMS_IMAGE:-...}
    assert kms["container"] == {
        "log_opts": {"max-size": "100M"},
        "ulimits": {"core": {"soft": -1, "hard": -1}},
    }
    assert kms["restart"]["condition"] == "any"  # restart: always
    assert [m["source"] for m in kms["mounts"]][1] == "/opt/openvidu/recordings"  # from the .env
    server = by["openvidu-server"]
    assert server["entrypoint"] == ["/usr/local/bin/entrypoint.sh"]
    assert server["env"]["KMS_URIS"] == '["ws://localhost:8888/kurento"]'
    assert server["env"]["COTURN_IP"] == "auto-ipv4" and server["env"]["COTURN_REDIS_PASSWORD"] == "MY_SECRET"
    assert server["env"]["OPENVIDU_SECRET"] == "MY_SECRET"  # env_file: .env
    assert server["restart"]["condition"] == "on-failure"
    sources = {m["target"]: m["source"] for m in server["mounts"]}
    assert sources["/opt/openvidu/custom-layout"] == "/opt/openvidu/custom-layout"  # ${X}:${X}
    nginx = by["nginx"]["env"]
    assert nginx["PROXY_HTTP_PORT"] == "80" and nginx["PUBLIC_IP"] == "auto-ipv4"
    # every service is host-networked (h49: was ignored, the tasks on the cluster network), said in one line
    assert {s["networks"][0]["target"] for s in by.values()} == {"host"} and not definition.networks
    assert [w.split(":")[0] for w in definition.warnings if "network namespace" in w] == [
        "host network (services openvidu-server, kms, redis, coturn, nginx)"
    ]


def test_thehives_production_stack():
    definition = corpus("thehive-prod-memswap")
    by = specs(definition)
    hive = by["thehive"]
    # a list item written as a block scalar: the key up to the first `=`, the rest its value
    assert hive["env"] == {
        "JAVA_OPTS": "\n  -Xms3000M\n  -Xmx3000M\n  -XX:MaxMetaspaceSize=400m\n"
        "  -XX:ReservedCodeCacheSize=400m\n"
    }
    assert hive["command"] == ["--no-config", "--no-config-secret"] and hive["user"] == "1000:1000"
    assert hive["limit_cpu_nanos"] == 4 * 10**9 and hive["limit_memory_bytes"] == 4 * 1024**3  # '4.000', 4G
    assert hive["health"]["cmd"] == ["CMD-SHELL", "curl -s -f thehive:9000/thehive/api/status || exit 1"]
    assert by["elasticsearch"]["user"] == "1000:0"
    assert by["elasticsearch"]["container"] == {
        "hostname": "elasticsearch",
        "ulimits": {"nofile": {"soft": 65536, "hard": 65536}},
        "memswap_limit_bytes": 4 * 1024**3,
    }
    assert by["elasticsearch"]["env"]["ES_JAVA_OPTS"] == "-Xms3G -Xmx3G"  # a ` #` comment cut, not the value
    assert by["elasticsearch"]["env"]["ELASTIC_PASSWORD"] == "changeme"
    assert (
        by["cassandra"]["health"]["start_period_s"] == 120.0
        and by["cassandra"]["health"]["interval_s"] == 2.0
    )
    assert by["cassandra"]["labels"]["com.strangebee.version"] == "4.1.7"
    assert by["nginx"]["publish"] == [{"target": 443, "published": 443, "protocol": "tcp"}]
    assert [w.wait_for for w in deploy_waves(definition)] == [
        (),
        (("x-cassandra", "service_healthy"), ("x-elasticsearch", "service_healthy")),
        (("x-thehive", "service_started"),),
    ]
    # memswap_limit equal to the memory limit: no swap (HostConfig.MemorySwap); before, ignored with a warning
    assert {short: by[short]["container"].get("memswap_limit_bytes") for short in by} == {
        "cassandra": 4 * 1024**3,
        "elasticsearch": 4 * 1024**3,
        "thehive": 4 * 1024**3,
        "nginx": None,
    }
    assert not [w for w in definition.warnings if "memswap" in w]


def test_nautobots_three_layered_files_in_a_subdirectory():
    base = CORPUS / "nautobot-layered-environments"
    definition = corpus("nautobot-layered-environments")
    by = specs(definition)
    nautobot = by["nautobot"]
    # `<<: [*nautobot-base, *nautobot-build]`: both anchors merged, env_file relative to environments/
    assert nautobot["image"] == "yourrepo/nautobot-docker-compose:local"
    assert nautobot["env"] == {
        "NAUTOBOT_DB_HOST": "db",
        "NAUTOBOT_DB_PASSWORD": "changeme",
        "NAUTOBOT_LOG_LEVEL": "INFO",
        "NAUTOBOT_REDIS_PASSWORD": "changeme",
    }
    # the third file's health check and command; its ../ binds from the first file's directory
    assert nautobot["health"]["cmd"] == ["CMD", "true"] and nautobot["health"]["start_period_s"] == 60.0
    assert nautobot["command"] == ["nautobot-server", "runserver", "0.0.0.0:8080"]
    assert nautobot["mounts"][0]["source"] == str(base / "config/nautobot_config.py")
    assert by["celery_beat"]["health"]["cmd"] == ["NONE"]  # disable: true
    worker = by["celery_worker"]
    assert worker["entrypoint"] == [
        "sh",
        "-c",
        "nautobot-server celery worker -l $NAUTOBOT_LOG_LEVEL --events",
    ]
    assert worker["health"]["cmd"][-1] == "nautobot-server celery inspect ping --destination celery@$HOSTNAME"
    assert by["db"]["command"] == ["-c", "max_connections=1000"]  # from the second file
    waves = [w.wait_for for w in deploy_waves(definition)]
    assert waves[-1] == (("x-nautobot", "service_healthy"),), waves


def test_memswap_limit_is_memory_plus_swap_as_dockers_memory_swap():
    definition = load(
        """
        services:
          es: {image: x, deploy: {resources: {limits: {memory: 4G}}}, memswap_limit: 4G}
          unlimited: {image: x, mem_limit: 1g, memswap_limit: -1}
        """
    )
    assert spec_of(definition, "es")["container"] == {"memswap_limit_bytes": 4 * 1024**3}  # no swap
    assert spec_of(definition, "unlimited")["container"] == {"memswap_limit_bytes": -1}
    # what Docker refuses at container create is refused at load, naming the key
    alone = refusal("services: {es: {image: x, memswap_limit: 4G}}")
    assert "services.es.memswap_limit: needs a memory limit: it is memory plus swap" in alone
    below = refusal("services: {es: {image: x, mem_limit: 2g, memswap_limit: 1g}}")
    assert "services.es.memswap_limit: must not be below the memory limit" in below


def test_a_volume_subpath_is_the_mounts_subpath():
    # Swarm (Engine 26+) mounts the subdirectory; so does p2porch since session 50, and a node whose engine
    # is older than API 1.45 fails the task naming it (test_compose_session50_gaps.py) rather than mounting
    # the whole volume, which would show the task every tenant's data
    definition = load(
        """
        services:
          web:
            image: ghcr.io/mleem97/genposed-web:latest
            volumes:
              - type: volume
                source: web-data
                target: /app/data
                volume: {nocopy: true, subpath: tenant-a}
        volumes:
          web-data:
        """
    )
    mount = spec_of(definition, "web")["mounts"][0]
    assert mount["subpath"] == "tenant-a" and mount["nocopy"] and mount["source"] == "app_web-data"


def test_the_kitchen_sink_files_newest_keys():
    definition = corpus("genposed-kitchen-sink")
    web = specs(definition)["web"]
    assert [s.short_name for s in definition.services] == ["postgres", "redis", "web"]  # migration: a profile
    assert web["constraints"] == ["node.role==replica", "node.labels.region==eu-central"]
    assert web["placement_preferences"] == ["spread=node.labels.zone"] and web["max_replicas_per_node"] == 2
    assert web["update"] == {
        "parallelism": 2,
        "delay_s": 10.0,
        "order": "start-first",
        "failure_action": "rollback",
        "monitor_s": 30.0,
        "max_failure_ratio": 0.2,
    }
    assert web["restart"] == {
        "condition": "on-failure",
        "delay_s": 5.0,
        "max_delay_s": 300.0,
        "max_attempts": 3,
        "window_s": 120.0,
    }
    assert (web["limit_cpu_nanos"], web["limit_memory_bytes"]) == (2 * 10**9, 2 * 1024**3)
    assert (web["reserve_cpu_nanos"], web["reserve_memory_bytes"]) == (5 * 10**8, 256 * 1024**2)
    assert web["container"]["pids_limit"] == 512  # deploy.resources.limits.pids
    assert web["container"]["log_driver"] == "json-file"  # from the anchor, with its driver
    assert web["publish"] == [{"target": 3000, "published": 3000, "protocol": "tcp", "host_ip": "127.0.0.1"}]
    mounts = {m["target"]: m for m in web["mounts"]}
    assert mounts["/app/data"]["nocopy"] is True
    assert mounts["/app/config"]["readonly"] is True and mounts["/app/config"]["propagation"] == "rprivate"
    assert (mounts["/tmp"]["tmpfs_size_bytes"], mounts["/tmp"]["tmpfs_mode"]) == (64 * 1024**2, 1777)
    assert web["configs"][0]["mode"] == 0o444 and web["configs"][0]["uid"] == "1000"
    assert web["secrets"][0]["mode"] == 0o400 and web["secrets"][0]["target"] == "/run/secrets/db_password"
    assert web["health"]["start_interval_s"] == 2.0
    assert web["env"]["DATABASE_URL"] == "postgres://genposed:pw@postgres/genposed"  # ${X:?} from the .env
    assert web["networks"][0] == {"target": "genposed-app", "aliases": ["frontend"]}
    assert web["service_labels"]["caddy.reverse_proxy"] == "{{upstreams 3000}}"
    for key in ("ipv4_address", "priority", "gw_priority", "interface_name"):
        assert f"ignoring networks.app.{key} (service web): " in "\n".join(definition.warnings), key


def test_swarmproms_monitoring_stack_with_file_configs():
    definition = corpus("swarmprom-traefik-configs")
    by = specs(definition)
    exporter = by["node-exporter"]
    assert exporter["mode"] == "global" and exporter["env"] == {"NODE_ID": "{{.Node.ID}}"}  # per task
    assert (
        exporter["command"][3] == "--collector.filesystem.ignored-mount-points=^/(sys|proc|dev|host|etc)($|/)"
    )
    assert (exporter["limit_memory_bytes"], exporter["reserve_memory_bytes"]) == (128 * 1024**2, 64 * 1024**2)
    prometheus = by["prometheus"]
    assert prometheus["constraints"] == ["node.role==voter"]  # node.role == manager
    assert [(c["source"], c["target"]) for c in prometheus["configs"]] == [
        ("x-node_rules", "/etc/prometheus/swarm_node.rules.yml"),
        ("x-task_rules", "/etc/prometheus/swarm_task.rules.yml"),
    ]
    assert [n["target"] for n in prometheus["networks"]] == ["x_default", "x_net", "traefik-public"]
    assert by["alertmanager"]["service_labels"]["traefik.frontend.auth.basic.users"] == "admin:$apr1$xyz"
    assert definition.warnings == ()


def test_a_hybrid_swarms_traefik_on_swarms_bridge_network():
    definition = corpus("hybrid-traefik-bridge")
    traefik = specs(definition)["traefik"]
    # node.platform.os == linux holds on every p2porch node: dropped; node.role == manager is a voter
    assert traefik["constraints"] == ["node.role==voter"] and traefik["max_replicas_per_node"] == 1
    assert traefik["networks"] == [{"target": "traefik-internal", "aliases": []}]  # bridge: warned
    assert [p["mode"] for p in traefik["publish"]] == ["host", "host"]
    assert traefik["update"]["delay_s"] == 10.0 and traefik["restart"]["condition"] == "on-failure"
    assert definition.warnings[0].startswith("ignoring networks.traefik-public (service traefik): the node's")


def test_kafka_uis_command_of_escaped_line_breaks():
    # a backslash ending a line of a double-quoted scalar joins the lines without a space (YAML 1.2 7.3.1)
    definition = load(
        r"""
        services:
          kafka-init-topics:
            image: confluentinc/cp-kafka:5.3.1
            command: "bash -c 'echo Waiting for Kafka to be ready... && \
                       cub kafka-ready -b kafka1:29092 1 30 && \
                       kafka-topics --create --topic second.users'"
        """
    )
    assert spec_of(definition, "kafka-init-topics")["command"] == [
        "bash",
        "-c",
        "echo Waiting for Kafka to be ready... && cub kafka-ready -b kafka1:29092 1 30 && "
        "kafka-topics --create --topic second.users",
    ]
