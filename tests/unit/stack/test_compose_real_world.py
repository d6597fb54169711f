"""Constructs found in real Compose files of public projects (docs/stack.md, "Real-world files"), each
reproduced by a minimal hand-written file: what Compose accepts loads, what Compose refuses is an error
naming the service and the key."""

from __future__ import annotations

import pytest

from p2porch.errors import ConfigError
from p2porch.model import parse_port
from p2porch.stack import load_stack

from .compose_text import load, spec_of


def test_a_port_whose_host_ip_variable_is_unset_binds_every_address():
    """``"${HTTPS_BIND:-}:443:443"`` with the variable unset is ``:443:443``: an empty host IP, which
    Compose reads as every address (a mail-server stack writes its ports this way)."""
    definition = load(
        """
        services:
          web:
            image: nginx
            ports:
              - "${HTTPS_BIND:-}:${HTTPS_PORT:-443}:443"
              - ":8080:80/udp"
              - "${LOCAL:-127.0.0.1}:9000:9000"
        """
    )
    ports = [parse_port(p) for p in spec_of(definition, "web")["publish"]]
    assert [(p.host_ip, p.published, p.target, p.protocol) for p in ports] == [
        ("", 443, 443, "tcp"),
        ("", 8080, 80, "udp"),
        ("127.0.0.1", 9000, 9000, "tcp"),
    ]


def test_a_port_with_an_empty_host_port_publishes_nothing():
    """``"${PORT}:80"`` with PORT unset is ``:80``: Compose publishes the container port on a random
    host port; p2porch leaves it unpublished (reachable on the cluster network)."""
    definition = load("services:\n  web:\n    image: nginx\n    ports: ['${PORT}:80']\n")
    assert [parse_port(p).published for p in spec_of(definition, "web")["publish"]] == [None]
    assert any("PORT is not set" in w for w in definition.warnings)


def test_healthcheck_retries_zero_is_the_engine_default():
    """``retries: 0`` is valid Compose (the engine reads 0 as its default, 3): accepted with a warning."""
    definition = load(
        """
        services:
          mail:
            image: mailserver
            healthcheck:
              test: "ss --listening --tcp | grep -P 'LISTEN.+:smtp' || exit 1"
              timeout: 3s
              retries: 0
        """
    )
    health = spec_of(definition, "mail")["health"]
    assert health["retries"] == 3 and health["timeout_s"] == 3.0
    assert any("retries: 0" in w for w in definition.warnings)


@pytest.mark.parametrize(
    "service",
    [
        # Compose-only container options seen in real files: ignored with one warning each
        "image: zabbix/agent\n    privileged: true\n    pid: host\n    network_mode: host",
        "image: ollama\n    deploy:\n      resources:\n        reservations:\n          devices:\n"
        "            - driver: nvidia\n              count: all\n              capabilities: [gpu]",
        "image: app\n    mem_limit: 2g\n    memswap_limit: 2g\n    shm_size: '2gb'\n    pull_policy: always",
        "image: app\n    platform: linux/amd64\n    tty: true\n    stdin_open: true\n"
        "    oom_kill_disable: true",
        "image: app\n    dns: [1.1.1.1]\n    external_links: ['db:database']\n    container_name: app_1",
        "image: app\n    read_only: true\n    tmpfs: ['/run:size=16M,mode=1750,exec', '/tmp']",
        "image: app\n    sysctls: [net.core.somaxconn=4096]\n    ulimits:\n      nproc: 65535\n"
        "      nofile: {soft: 20000, hard: 40000}",
        "image: app\n    volumes: ['./conf:/etc/conf:ro,Z', '/etc/localtime:/etc/localtime:ro']",
        "image: app\n    labels: ['traefik.http.routers.a.rule=Host(`a.example`) && PathPrefix(`/api`)']",
        "image: app\n    extra_hosts: ['host.docker.internal:host-gateway']\n    expose: ['8080', 5347]",
        "image: app\n    deploy:\n      placement:\n        constraints:\n"
        "          - node.hostname == <hostname where the config files are>",
        "image: app\n    deploy:\n"
        "      update_config: {order: stop-first, monitor: 5s, failure_action: rollback}\n"
        "      rollback_config: {order: stop-first, monitor: 5s}",
    ],
)
def test_real_world_service_options_load(service):
    definition = load(f"services:\n  app:\n    {service}\n")
    spec_of(definition, "app")


@pytest.mark.parametrize(
    ("text", "field"),
    [
        # files that `docker compose config` itself refuses: refused here too, naming the key
        ("services:\n  a:\n    image: x\n    networks: [public]\n", "services.a.networks.public"),
        (
            "services:\n  a:\n    image: x\n    depends_on: [redis_cache]\n  redis-cache:\n    image: r\n",
            "services.a.depends_on.redis_cache",
        ),
        ("services:\n  a:\n    image: x\n    volumes: ['data:/data']\n", "services.a.volumes[0]"),
        (
            "services:\n  a:\n    image: x\n    volumes: ['${UPLOAD_LOCATION}:/data']\n",
            "services.a.volumes[0]",
        ),
        # a service to build: Swarm needs an image too
        ("services:\n  a:\n    build: .\n", "services.a.build"),
    ],
)
def test_files_compose_refuses_are_refused_by_path(text, field):
    with pytest.raises(ConfigError) as info:
        load(text)
    assert info.value.field == field, info.value.message


def test_a_file_of_several_yaml_documents_merges_them_in_order():
    """``version: "2.1"`` then ``---`` then the services (a Linux desktop image's README writes it so):
    Compose merges the documents of one file in order, like several files."""
    definition = load(
        """
        version: "2.1"
        ---
        services:
          desktop:
            image: webtop
            shm_size: "1gb"
            environment: [PUID=1000]
        ---
        services:
          desktop:
            environment: [TZ=UTC]
        """
    )
    spec = spec_of(definition, "desktop")
    assert spec["env"] == {"PUID": "1000", "TZ": "UTC"}
    assert spec["container"]["shm_size_bytes"] == 1024**3


def test_the_version_1_format_is_refused_with_a_hint():
    """Services at the top level (the version 1 format, which Compose v2 refuses too)."""
    with pytest.raises(ConfigError) as info:
        load("database:\n  image: postgres\nweb:\n  image: app\n  links: [database]\n")
    assert info.value.field == "services" and "version 1 format" in info.value.message


def test_devices_and_pids_limits_map_onto_the_container():
    """``devices`` (a media server's /dev/dri), ``pids_limit``, and Swarm's ``limits.pids``."""
    definition = load(
        """
        services:
          media:
            image: jellyfin
            devices: ["/dev/dri:/dev/dri", "/dev/ttyUSB0:/dev/modem:rw", "nvidia.com/gpu=all"]
            pids_limit: 200
          worker:
            image: app
            deploy:
              resources:
                limits: {cpus: "0.5", pids: 100}
        """
    )
    media = spec_of(definition, "media")["container"]
    assert media == {"devices": ["/dev/dri:/dev/dri:rwm", "/dev/ttyUSB0:/dev/modem:rw"], "pids_limit": 200}
    assert spec_of(definition, "worker")["container"] == {"pids_limit": 100}
    assert any("CDI" in w and "nvidia.com/gpu=all" in w for w in definition.warnings)


def test_a_bad_device_is_refused_by_its_compose_path():
    with pytest.raises(ConfigError) as info:
        load("services:\n  a:\n    image: x\n    devices: ['/dev/dri:/dev/dri:rwx']\n")
    assert info.value.field == "services.a.devices[0]", info.value.message


def test_an_included_file_reads_the_env_file_of_its_own_directory():
    """``include: [./mqtt/mqtt.yaml]`` whose directory has a ``.env`` setting ``TAG`` (a home-lab repo
    with one directory per service): that ``.env`` interpolates the included file, below the project's
    own variables; an entry's ``env_file`` replaces it."""
    files = {
        "/srv/app/mqtt/mqtt.yaml": "services:\n  mqtt:\n    image: eclipse-mosquitto:${TAG}\n",
        "/srv/app/mqtt/.env": "TAG=2.0\n",
        "/srv/app/db/db.yaml": "services:\n  db:\n    image: postgres:${TAG}\n",
        "/srv/app/db/.env": "TAG=16\n",
        "/srv/app/pinned.env": "TAG=9\n",
    }

    def read(path: str) -> str:
        if path not in files:
            raise FileNotFoundError(path)
        return files[path]

    text = "include:\n  - ./mqtt/mqtt.yaml\n  - path: ./db/db.yaml\n    env_file: pinned.env\n"
    definition = load_stack("app", text, read, base_dir="/srv/app", environ={})
    assert spec_of(definition, "mqtt")["image"] == "eclipse-mosquitto:2.0"
    assert spec_of(definition, "db")["image"] == "postgres:9"
    project_wins = load_stack("app", text, read, base_dir="/srv/app", environ={"TAG": "latest"})
    assert spec_of(project_wins, "mqtt")["image"] == "eclipse-mosquitto:latest"
    with pytest.raises(ConfigError) as info:
        load_stack(
            "app",
            "include:\n  - path: ./mqtt/mqtt.yaml\n    env_file: nope.env\n",
            read,
            base_dir="/srv/app",
            environ={},
        )
    assert info.value.field == "include[0].env_file"


# --- third sample (docs/stack.md, "Third sample") ---


def test_declared_networks_no_service_uses_are_not_refused():
    """A stack file may declare networks it does not use (Swarm's ``host``, a ``macvlan`` network for
    another setup): Swarm and Compose only look at the networks services attach to, and so does p2porch.
    None of them is created."""
    definition = load(
        """
        services:
          web:
            image: nginx
        networks:
          host:
            name: host
            external: true
          lan:
            driver: macvlan
          bridged:
            name: bridge
          dual:
            driver: bridge
            enable_ipv6: true
            ipam:
              config: [{subnet: 2001:db8:2::/64}]
        """
    )
    assert [n.key for n in definition.networks] == ["default"]
    assert spec_of(definition, "web")["networks"] == [{"target": "app_default", "aliases": []}]
    assert definition.warnings == ()  # nothing is created for them, so nothing is ignored either


def test_only_the_networks_services_use_warn_about_the_keys_they_ignore():
    definition = load(
        """
        services:
          web:
            image: nginx
            networks: [v4]
        networks:
          v4:
            driver: bridge
            enable_ipv6: false
            ipam:
              config: [{subnet: 10.5.0.0/24}]
          v6:
            enable_ipv6: true
        """
    )
    assert list(definition.warnings) == [
        "ignoring networks.v4.ipam: task addresses come from each node's lease of the cluster CIDR "
        "(networks are isolated by policy, not by subnet)",
        "networks.v4.driver: bridge becomes a cluster overlay network (as in a Swarm stack)",
    ]


@pytest.mark.parametrize(
    ("networks", "field"),
    [
        ("lan:\n    driver: macvlan\n", "networks.lan.driver"),
        ("lan:\n    name: bridge\n", "networks.lan.name"),
    ],
)
def test_a_network_p2porch_cannot_create_is_refused_once_a_service_uses_it(networks, field):
    text = f"services:\n  web:\n    image: nginx\n    networks: [lan]\nnetworks:\n  {networks}"
    with pytest.raises(ConfigError) as info:
        load(text)
    assert info.value.field == field, info.value.message


def test_swarms_external_host_network_alone_is_host_networking():
    """``networks: [host]`` with ``host: {external: true}`` is how a Swarm stack asks for host networking:
    alone, the service is on the host network (h49: was ignored); beside other networks it is ignored with
    a warning naming the service."""
    definition = load(
        """
        services:
          edge:
            image: nginx
            networks: [hostnet]
          worker:
            image: busybox
            networks: [hostnet, back]
        networks:
          hostnet:
            name: host
            external: true
          back: {}
        """
    )
    assert spec_of(definition, "edge")["networks"] == [{"target": "host", "aliases": []}]
    assert spec_of(definition, "edge")["endpoint_mode"] == "dnsrr"
    assert spec_of(definition, "worker")["networks"] == [{"target": "app_back", "aliases": []}]
    assert sorted(n.key for n in definition.networks) == ["back"]
    warned = [w for w in definition.warnings if "external network 'host'" in w]
    assert [w.split(":")[0] for w in warned] == ["ignoring networks.hostnet (service worker)"]


def test_a_network_alias_with_an_underscore_is_accepted():
    """``aliases: [pg_cluster]`` (a replication stack gives its primary and replica one name): Docker's
    DNS answers names with ``_``, as p2porch does for Compose service names such as ``bookstack_db``."""
    definition = load(
        """
        services:
          pg_master:
            image: postgres
            networks:
              default:
                aliases: [pg_cluster, PG.Primary]
        """
    )
    assert spec_of(definition, "pg_master")["networks"] == [
        {"target": "app_default", "aliases": ["pg_cluster", "pg.primary"]}
    ]


def test_a_spread_over_an_attribute_swarm_does_not_spread_over_is_dropped_with_a_warning():
    """Swarm spreads over ``node.labels.*`` and ``engine.labels.*``; any other attribute
    (``spread: node.role.manager`` in an Elasticsearch stack) puts every node in one group, a no-op
    Swarm accepts. p2porch drops it with a warning instead of refusing the file."""
    definition = load(
        """
        services:
          es:
            image: elasticsearch
            deploy:
              placement:
                preferences:
                  - spread: node.role.manager
                  - spread: node.labels.zone
                  - spread: engine.labels.rack
        """
    )
    assert spec_of(definition, "es")["placement_preferences"] == [
        "spread=node.labels.zone",
        "spread=node.labels.rack",
    ]
    assert any(
        w.startswith("placement preference spread: node.role.manager (service es)")
        for w in definition.warnings
    )
    assert any(w.startswith("spread engine.labels (service es)") for w in definition.warnings)


@pytest.mark.parametrize(
    "image",
    [
        "${DOCKER_REPO}/${NAME}:${TB_VERSION}",  # '/:' (an IoT platform's file without its .env)
        "owncloud/server:${VERSION}",  # 'owncloud/server:'
        "ghcr.io/${OWNER}/app-db:latest",  # 'ghcr.io//app-db:latest'
        "ghcr.io/MyOrg/app",  # repository paths are lowercase
    ],
)
def test_an_image_docker_cannot_parse_is_refused_by_its_path(image):
    """Docker refuses these references on every node (``invalid reference format``), and so does
    ``docker stack deploy``; p2porch refuses the file instead of creating services whose tasks never start."""
    with pytest.raises(ConfigError) as info:
        load(f"services:\n  web:\n    image: {image}\n")
    assert info.value.field == "services.web.image", info.value.message


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        ("nginx", "nginx"),
        ("localhost:5000/team/app:1.0-rc.1", "localhost:5000/team/app:1.0-rc.1"),
        ("Registry.Example.com/app/web", "Registry.Example.com/app/web"),
        ("docker.dragonflydb.io/dragonflydb/dragonfly", "docker.dragonflydb.io/dragonflydb/dragonfly"),
        ("postgres:9.6-alpine@sha256:" + "c2" * 32, "postgres:9.6-alpine@sha256:" + "c2" * 32),
        ("${REGISTRY:-ghcr.io}/org/app:${TAG:-latest}", "ghcr.io/org/app:latest"),
        ("[fd00::1]:5000/app:1", "[fd00::1]:5000/app:1"),  # an IPv6 registry
        ("app@sha512:" + "ab" * 64, "app@sha512:" + "ab" * 64),  # digests other than sha256
    ],
)
def test_image_references_docker_accepts_load(image, expected):
    definition = load(f"services:\n  web:\n    image: '{image}'\n")
    assert spec_of(definition, "web")["image"] == expected
