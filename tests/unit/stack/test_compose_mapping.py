"""The Compose loader: every supported key maps onto the spec, every error is named by its path."""

from __future__ import annotations

import posixpath
import textwrap

import pytest

from p2porch.errors import ConfigError
from p2porch.model import ServiceSpec
from p2porch.stack import StackDefinition, load_stack, parse_dotenv, parse_yaml

FULL = """
version: "3.8"
x-defaults: &defaults
  working_dir: /srv
services:
  web:
    <<: *defaults
    image: p2porch/busybox:latest
    command: sh -c 'echo $$HOME && exec httpd -f -p 80'
    entrypoint: ["/bin/env", "--"]
    environment:
      LOG: debug
      WORKERS: 4
      DEBUG: true
      VERBOSE: yes
    env_file: [common.env]
    labels:
      team: edge
      tier: 1
    ports:
      - "8080:80"
      - "53:53/udp"
      - 81
      - target: 90
        published: 9090
        protocol: tcp
        mode: host
    volumes:
      - ./data:/data:ro
      - db:/db
      - /cache
      - type: tmpfs
        target: /run
      - type: bind
        source: /etc/hosts
        target: /etc/outside-hosts
        read_only: true
    healthcheck:
      test: ["CMD-SHELL", "wget -q -O- localhost"]
      interval: 10s
      timeout: 2s
      retries: 4
      start_period: 1m
    user: "1000"
    stop_grace_period: 3s
    networks: [front]
    deploy:
      replicas: 3
      mode: replicated
      placement:
        constraints: [node.labels.zone==a, node.role!=voter]
        preferences:
          - spread: node.labels.zone
        max_replicas_per_node: 2
      resources:
        limits: {cpus: "0.5", memory: 64M}
        reservations: {cpus: 0.25, memory: 32M}
      restart_policy:
        condition: on-failure
        delay: 2s
        max_attempts: 3
        window: 1m
      update_config:
        parallelism: 2
        delay: 5s
        order: start-first
        failure_action: rollback
        monitor: 3s
  db:
    image: postgres:16
    deploy:
      mode: global
volumes:
  db:
    driver: local
networks:
  front:
    driver: overlay
"""

COMMON_ENV = """
# comment
export SHARED=from-file
QUOTED="a b"
SINGLE='c d'
TRAILING=value # a comment
LOG=overridden-by-environment
"""


def load(
    text: str, files: dict[str, str] | None = None, stack: str = "shop", base_dir: str = "/srv/shop", **kw
):
    """Load with ``files`` keyed by their path relative to ``base_dir`` (the loader reads absolute paths)."""
    files = files or {}

    def read(path: str) -> str:
        return files[posixpath.relpath(path, base_dir) if base_dir else path]

    return load_stack(stack, textwrap.dedent(text), read, base_dir=base_dir, **kw)


def error_of(text: str, **kw) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load(text, **kw)
    return info.value


@pytest.fixture
def full() -> StackDefinition:
    return load(FULL, {"common.env": COMMON_ENV})


def test_services_are_named_stack_dash_short_and_labelled(full):
    assert [s.short_name for s in full.services] == ["web", "db"]
    assert [s.name for s in full.services] == ["shop-web", "shop-db"]
    web = full.services[0].spec
    assert web["labels"] == {
        "team": "edge",
        "tier": "1",
        "p2porch.stack": "shop",
        "p2porch.stack.service": "web",
    }
    assert full.env_files == ("/srv/shop/common.env",)


def test_every_supported_service_key_maps_onto_the_spec(full):
    web = full.services[0].spec
    assert web["image"] == "p2porch/busybox:latest"
    assert web["command"] == ["sh", "-c", "echo $HOME && exec httpd -f -p 80"]  # $$ is a literal $
    assert web["entrypoint"] == ["/bin/env", "--"]
    assert web["env"] == {
        "VERBOSE": "yes",  # YAML 1.2 scalars: yes stays a string
        "LOG": "debug",  # environment wins over env_file
        "WORKERS": "4",
        "DEBUG": "true",
        "SHARED": "from-file",
        "QUOTED": "a b",
        "SINGLE": "c d",
        "TRAILING": "value",
    }
    assert web["publish"] == [
        {"target": 80, "published": 8080, "protocol": "tcp"},
        {"target": 53, "published": 53, "protocol": "udp"},
        {"target": 81, "published": None, "protocol": "tcp", "mode": "ingress"},  # assigned a port
        {"target": 90, "published": 9090, "protocol": "tcp", "mode": "host"},
    ]
    assert web["mounts"] == [
        {
            "type": "bind",
            "source": "/srv/shop/data",
            "target": "/data",
            "readonly": True,
            "volume_driver": "",
            "create_host_path": True,  # implied by the short syntax
        },
        {"type": "volume", "source": "shop_db", "target": "/db", "readonly": False, "volume_driver": "local"},
        {"type": "volume", "source": "", "target": "/cache", "readonly": False, "volume_driver": ""},
        {"type": "tmpfs", "source": "", "target": "/run", "readonly": False, "volume_driver": ""},
        {
            "type": "bind",
            "source": "/etc/hosts",
            "target": "/etc/outside-hosts",
            "readonly": True,
            "volume_driver": "",
        },
    ]
    assert web["health"] == {
        "cmd": ["CMD-SHELL", "wget -q -O- localhost"],
        "interval_s": 10.0,
        "timeout_s": 2.0,
        "retries": 4,
        "start_period_s": 60.0,
    }
    assert (web["user"], web["workdir"], web["stop_grace_period_s"]) == (
        "1000",
        "/srv",
        3.0,
    )  # working_dir via <<


def test_every_supported_deploy_key_maps_onto_the_spec(full):
    web, db = (s.spec for s in full.services)
    assert (web["mode"], web["replicas"]) == ("replicated", 3)
    assert web["constraints"] == ["node.labels.zone==a", "node.role!=voter"]
    assert web["placement_preferences"] == ["spread=node.labels.zone"]
    assert web["max_replicas_per_node"] == 2
    assert (web["limit_cpu_nanos"], web["limit_memory_bytes"]) == (500_000_000, 64 * 1024**2)
    assert (web["reserve_cpu_nanos"], web["reserve_memory_bytes"]) == (250_000_000, 32 * 1024**2)
    assert web["restart"] == {
        "condition": "on-failure",
        "delay_s": 2.0,
        "max_delay_s": 300.0,
        "max_attempts": 3,
        "window_s": 60.0,
    }
    assert web["update"] == {
        "parallelism": 2,
        "delay_s": 5.0,
        "order": "start-first",
        "failure_action": "rollback",
        "monitor_s": 3.0,
        "max_failure_ratio": 0.0,
    }
    assert db["mode"] == "global"


def test_specs_are_canonical_service_specs(full):
    for service in full.services:
        assert ServiceSpec.from_dict(service.spec).to_dict() == service.spec


def test_defaults_of_a_minimal_service_are_the_service_defaults():
    stack = load("services:\n  api:\n    image: nginx\n")
    assert (
        stack.services[0].spec
        == ServiceSpec.from_dict(
            {
                "name": "shop-api",
                "image": "nginx",
                "labels": {"p2porch.stack": "shop", "p2porch.stack.service": "api"},
                "networks": ["shop_default"],  # the stack's implicit default network
            }
        ).to_dict()
    )
    assert [n.name for n in stack.networks] == ["shop_default"]


@pytest.mark.parametrize(
    ("command", "words"),
    [
        ("sleep 1d", ["sleep", "1d"]),
        ("sh -c 'a && b'", ["sh", "-c", "a && b"]),
        ('["sleep", 30]', ["sleep", "30"]),
        ("[]", []),
    ],
)
def test_command_strings_are_split_like_a_shell(command, words):
    stack = load(f"services:\n  api:\n    image: x\n    command: {command}\n")
    assert stack.services[0].spec["command"] == words


def test_environment_list_form_and_healthcheck_disable():
    stack = load(
        """
        services:
          api:
            image: x
            environment: ["A=1", "B=two=2", "C="]
            healthcheck: {disable: true}
        """
    )
    spec = stack.services[0].spec
    assert spec["env"] == {"A": "1", "B": "two=2", "C": ""}
    assert spec["health"]["cmd"] == ["NONE"]


def test_short_ports_are_strings_not_sexagesimal_numbers():
    """YAML 1.1 reads an unquoted 22:22 as 1342; Compose (YAML 1.2) and p2porch read a port mapping."""
    assert parse_yaml("p: 22:22") == {"p": "22:22"}
    stack = load("services:\n  api:\n    image: x\n    ports: [22:22]\n")
    assert stack.services[0].spec["publish"] == [{"target": 22, "published": 22, "protocol": "tcp"}]


def test_external_and_named_volumes_keep_their_docker_names():
    stack = load(
        """
        services:
          api:
            image: x
            volumes: ["ext:/a", "named:/b", "plain:/c"]
        volumes:
          ext: {external: true}
          named: {name: exact-name}
          plain:
        """
    )
    assert [m["source"] for m in stack.services[0].spec["mounts"]] == ["ext", "exact-name", "shop_plain"]


def test_env_file_string_form_and_optional_missing_file():
    stack = load(
        """
        services:
          api:
            image: x
            env_file:
              - path: missing.env
                required: false
              - present.env
        """,
        {"present.env": "K=V\n"},
    )
    assert stack.services[0].spec["env"] == {"K": "V"}
    assert stack.env_files == ("/srv/shop/present.env",)


def test_env_file_later_files_override_earlier_ones():
    stack = load(
        "services:\n  api:\n    image: x\n    env_file: [a.env, b.env]\n",
        {"a.env": "K=a\nONLY_A=1\n", "b.env": "K=b\n"},
    )
    assert stack.services[0].spec["env"] == {"K": "b", "ONLY_A": "1"}


def test_dotenv_syntax_errors_name_the_file_and_line():
    assert parse_dotenv("A=1\nJUSTAKEY\n", "x.env", {"JUSTAKEY": "from-env"}) == {
        "A": "1",
        "JUSTAKEY": "from-env",
    }
    assert parse_dotenv("A=1\nJUSTAKEY\n", "x.env", {}) == {"A": "1"}
    with pytest.raises(ConfigError) as info:
        parse_dotenv("A=1\nB='open\n", "x.env")
    assert "x.env line 2" in info.value.message
    with pytest.raises(ConfigError) as info:
        parse_dotenv("A=1\nX$=2\n", "x.env")  # a leading digit is fine (test_compose_spec_rows.py)
    assert "x.env line 2: invalid variable name 'X$'" in info.value.message


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("servics: {}\n", "servics"),
        ("services:\n  web:\n    image: x\n    imagee: y\n", "services.web.imagee"),
        ("services:\n  web:\n    image: x\n    deploy: {replica: 2}\n", "services.web.deploy.replica"),
        (
            "services:\n  web:\n    image: x\n    deploy: {placement: {preferences: [{binpack: x}]}}\n",
            "services.web.deploy.placement.preferences[0].binpack",
        ),
        (
            "services:\n  web:\n    image: x\n    healthcheck: {test: x, every: 1s}\n",
            "services.web.healthcheck.every",
        ),
        (
            "services:\n  web:\n    image: x\n    ports: [{target: 80, hostip: 0.0.0.0}]\n",
            "services.web.ports[0].hostip",
        ),
        ("services:\n  web:\n    image: x\nvolumes:\n  v: {driver_opt: {}}\n", "volumes.v.driver_opt"),
        ("services:\n  web:\n    image: x\nnetworks:\n  n: {ipam2: {}}\n", "networks.n.ipam2"),
        (
            "services:\n  web:\n    image: x\n    networks: {default: {alias: [a]}}\n",
            "services.web.networks.default.alias",
        ),
    ],
)
def test_unsupported_keys_are_reported_by_path(text, field):
    exc = error_of(text)
    assert exc.field == field
    assert exc.message == f"{field}: unknown key"


@pytest.mark.parametrize(
    ("text", "field", "fragment"),
    [
        ("services:\n  web:\n    command: x\n", "services.web.image", "is required"),
        ("services:\n  '123':\n    image: x\n", "services.123", "not a valid service name"),
        ("services:\n  we b:\n    image: x\n", "services.we b", "not a valid service name"),
        ("services:\n  web_1:\n    image: x\n  web-1:\n    image: x\n", "services.web-1", "rename one"),
        ("services:\n  tasks:\n    image: x\n", "services.tasks", "reserved"),
        ("services: {}\n", "services", "at least one service"),
        (
            "services:\n  web:\n    image: x\n    labels: {p2porch.stack: x}\n",
            "services.web.labels.p2porch.stack",
            "reserved",
        ),
        (
            "services:\n  web:\n    image: x\n    volumes: ['v:/x']\n",
            "services.web.volumes[0]",
            "not declared",
        ),
        (
            "services:\n  web:\n    image: x\n    volumes: ['/a:rel']\n",
            "services.web.volumes[0].target",
            "absolute",
        ),
        (
            "services:\n  web:\n    image: x\n    healthcheck: {test: x, interval: 0s}\n",
            "services.web.healthcheck.interval",
            "positive",
        ),
        (
            "services:\n  web:\n    image: x\n    networks: [nope]\n",
            "services.web.networks.nope",
            "not declared",
        ),
        (
            "services:\n  web:\n    image: x\n    deploy: {replicas: many}\n",
            "services.web.deploy.replicas",
            "integer",
        ),
        (
            "services:\n  web:\n    image: x\n    deploy: {mode: global, x-p2porch: {schedule: '@daily'}}\n",
            "services.web.deploy.x-p2porch.schedule",
            "only a job",
        ),
        ("services:\n  web:\n    image: x\n    ports: ['80:99999']\n", "services.web.ports[0]", "range"),
        (
            "services:\n  web:\n    image: x\n    ports: ['8000-8002:80-81']\n",
            "services.web.ports[0]",
            "length",
        ),
        (
            "services:\n  web:\n    image: x\n    ports: [{target: 80, mode: mesh}]\n",
            "services.web.ports[0].mode",
            "host",
        ),
        ("services:\n  web:\n    image: x\n    volumes: ['/a:/x:q']\n", "services.web.volumes[0]", "'q'"),
        ("services:\n  web:\n    image: ${IMG:?set IMG}\n", "services.web.image", "IMG is not set: set IMG"),
        ("services:\n  web:\n    image: ${IMG\n", "services.web.image", "closing"),
        ("services:\n  web:\n    image: ${IMG/x/y}\n", "services.web.image", "invalid interpolation"),
        ("services:\n  web:\n    build: .\n", "services.web.build", "build and push the image"),
        ("services:\n  web:\n    image: x\n    restart: sometimes\n", "services.web.restart", "on-failure"),
        (
            "services:\n  web:\n    image: x\n    depends_on: [db]\n",
            "services.web.depends_on.db",
            "not defined",
        ),
        ("services:\n  web:\n    image: x\n    depends_on: [web]\n", "services.web.depends_on.web", "itself"),
        ("services:\n  web:\n    image: x\n    cap_add: [net admin]\n", "services.web.cap_add", "capability"),
        ("services:\n  web:\n    image: x\n    shm_size: lots\n", "services.web.shm_size", "invalid size"),
        (
            "services:\n  web:\n    image: x\n    logging: {options: {a: b}, driver: 'x y'}\n",
            "services.web.logging.driver",
            "driver",
        ),
        ("services:\n  web:\n    image: x\n    extends: nope\n", "services.web.extends.service", "not found"),
        ("services:\n  web:\n    image: x\n    expose: [http]\n", "services.web.expose[0]", "invalid port"),
        (
            "services:\n  web:\n    image: x\n    deploy: {endpoint_mode: ring}\n",
            "services.web.deploy.endpoint_mode",
            "vip",
        ),
        (
            "services:\n  web:\n    image: x\n    deploy: {placement: {constraints: [node.labels.a~b]}}\n",
            "services.web.deploy.placement.constraints[0]",
            "no == or !=",
        ),
        # the key the file has, not the deploy key it stands for
        ("services:\n  web:\n    image: x\n    mem_limit: 12Q\n", "services.web.mem_limit", "invalid size"),
        ("services:\n  web:\n    image: x\n    cpus: lots\n", "services.web.cpus", "lots"),
        ("services:\n  web:\n    image: x\n    scale: -1\n", "services.web.scale", "at least 0"),
        ("services:\n  web:\n    image: x\n    command: 5\n", "services.web.command", "got an integer"),
        (
            "services:\n  web:\n    image: x\n    deploy: {resources: {limits: {memory: 12Q}}}\n",
            "services.web.deploy.resources.limits.memory",
            "invalid size",
        ),
        (
            "services:\n  web:\n    image: x\n"
            "    deploy: {resources: {limits: {cpus: 1}, reservations: {cpus: 2}}}\n",
            "services.web.deploy.resources.limits.cpus",
            "below",
        ),
        (
            "services:\n  web:\n    image: x\n    deploy: {restart_policy: {condition: sometimes}}\n",
            "services.web.deploy.restart_policy.condition",
            "on-failure",
        ),
        (
            "services:\n  web:\n    image: x\n    deploy: {update_config: {order: sideways}}\n",
            "services.web.deploy.update_config.order",
            "start-first",
        ),
        (
            "services:\n  web:\n    image: x\n    env_file: gone.env\n",
            "services.web.env_file[0]",
            "cannot read '/srv/shop/gone.env'",
        ),
        ("services:\n  web:\n    image: x\n    image: y\n", "compose", "duplicate key 'image'"),
        ("services: [\n", "compose", "invalid YAML"),
        # a secret's or config's mode and owner: the entry of the service's list, not the service
        (
            "services:\n  web:\n    image: x\n    secrets: [{source: s, mode: abc}]\n"
            "secrets:\n  s: {external: true}\n",
            "services.web.secrets[0].mode",
            "octal mode",
        ),
        (
            "services:\n  web:\n    image: x\n    configs: [c, {source: c, target: /x, uid: a}]\n"
            "configs:\n  c: {external: true}\n",
            "services.web.configs[1].uid",
            "numeric id",
        ),
    ],
)
def test_invalid_values_are_reported_by_path(text, field, fragment):
    exc = error_of(text)
    assert exc.field == field, exc.message
    assert exc.message.startswith(f"{field}: ")
    assert fragment in exc.message


def test_relative_bind_mounts_need_the_compose_files_directory():
    exc = error_of("services:\n  web:\n    image: x\n    volumes: ['./d:/d']\n", base_dir="")
    assert exc.field == "services.web.volumes[0]" and "relative path" in exc.message


def test_invalid_stack_name_is_refused():
    with pytest.raises(ConfigError) as info:
        load_stack("My_Stack", "services:\n  web:\n    image: x\n")
    assert info.value.field == "NAME"


def test_too_long_combined_name_is_refused():
    exc = error_of(f"services:\n  {'a' * 60}:\n    image: x\n")
    assert exc.field == f"services.{'a' * 60}" and "longer than 63" in exc.message


def test_a_required_variable_that_is_unset_is_one_problem_not_two():
    from p2porch.stack import ComposeError

    with pytest.raises(ComposeError) as info:
        load_stack("s", "services:\n  web:\n    image: ${IMG:?set IMG}\n", lambda path: "")
    assert [p.message for p in info.value.problems] == [
        "services.web.image: required variable IMG is not set: set IMG"
    ]
