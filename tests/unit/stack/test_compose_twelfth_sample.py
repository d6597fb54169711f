"""Constructs of the twelfth real-world sample (docs/stack.md, "Twelfth sample"), each reproduced by a
minimal hand-written file: the ones the sample's files rely on (checked right), and the three gaps it
found: a tab before a comment (PyYAML refused what go-yaml reads), a tmpfs ``mode: 01777`` read as the
decimal 1777 where compose-go reads octal, and a misleading warning about the links of a refused
service."""

from __future__ import annotations

import pytest

from p2porch.errors import ConfigError
from p2porch.stack import ComposeError
from p2porch.stack.yamlloader import load as load_yaml

from .compose_text import load, refusal, spec_of

# Tube Archivist's file: a tab between a value and its comment (libyaml, so go-yaml and compose-go,
# skip it; PyYAML refused the file "found character '\t' that cannot start any token").
TABS = (
    "services:\n"
    "  web:\n"
    "    image: nginx\t# pinned below\n"
    "    environment:\n"
    "      - DJANGO_DEBUG=True\t\t#enables additional application logging\n"
    "      - TZ=America/New_York\n"
    "    command:\tnginx -g 'daemon off;'\n"
    "    labels: {a: b,\tc: d}\n"
)


def test_a_tab_before_a_comment_or_after_a_colon_separates_as_in_libyaml() -> None:
    spec = spec_of(load(TABS), "web")
    assert spec["image"] == "nginx"
    assert spec["env"] == {"DJANGO_DEBUG": "True", "TZ": "America/New_York"}
    assert spec["command"] == ["nginx", "-g", "daemon off;"]
    assert {"a": "b", "c": "d"}.items() <= spec["labels"].items()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a: x\ty z\n", {"a": "x\ty z"}),  # a tab between words stays in the value, as in libyaml
        ("a: v\t\nb: w\n", {"a": "v", "b": "w"}),  # trailing tabs are dropped
        ("a: line1\t\n  line2\n", {"a": "line1 line2"}),  # and folded like spaces
        ('a: "q"\t# c\n', {"a": "q"}),
        ("a: [x,\ty]\n", {"a": ["x", "y"]}),
        ("a: |\t# c\n  x\n", {"a": "x\n"}),  # after a block scalar's header
        ("a: >-\t\n  x\n  y\n", {"a": "x y"}),
        ("a: |2\t\t# c\n   x\n", {"a": " x\n"}),
    ],
)
def test_tabs_within_a_line_read_as_libyaml_reads_them(text: str, expected: dict) -> None:
    assert load_yaml(text, "f", False) == expected


@pytest.mark.parametrize("text", ["\ta: v\n", "a:\n\t- x\n", "a:\n  b: 1\n\tc: 2\n"])
def test_a_tab_that_indents_is_still_refused_naming_the_line(text: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_yaml(text, "compose.yaml", False)
    assert "compose.yaml line" in str(info.value) and "invalid YAML" in str(info.value)


# Grocy's and the spec's tmpfs forms: the long syntax's mode is a number; go-yaml reads a leading zero
# as octal (YAML 1.1), so compose-go gives 01777 as 1023; 1777 stays decimal, as compose-go keeps it.
TMPFS = """
services:
  web:
    image: nginx
    read_only: true
    volumes:
      - {type: tmpfs, target: /a, tmpfs: {mode: 01777, size: 1gb}}
      - {type: tmpfs, target: /b, tmpfs: {mode: 0o700}}
      - {type: tmpfs, target: /c, tmpfs: {mode: 1777}}
    tmpfs:
      - /d:mode=1777
"""


def test_a_tmpfs_mode_with_a_leading_zero_is_octal_as_compose_go_reads_it() -> None:
    mounts = {m["target"]: m for m in spec_of(load(TMPFS), "web")["mounts"]}
    assert mounts["/a"]["tmpfs_mode"] == 0o1777
    assert mounts["/a"]["tmpfs_size_bytes"] == 1 << 30
    assert mounts["/b"]["tmpfs_mode"] == 0o700
    assert mounts["/c"]["tmpfs_mode"] == 1777  # decimal, as compose-go and Swarm take it
    assert mounts["/d"]["tmpfs_mode"] == 0o1777  # the short form is Docker's --tmpfs: octal


# Shlink's dev file: a build-only service with links; the refusal names the build, and no warning
# claims the service "runs in another service's task" (that is for network_mode: service:X).
SHLINK = """
services:
  nginx:
    image: nginx:1.25-alpine
    links: [php]
  php:
    build: .
    links: [db, redis]
  db:
    image: mysql:8.0
  redis:
    image: redis:6.2-alpine
"""


def test_a_refused_service_s_links_are_not_called_a_task_group_member() -> None:
    with pytest.raises(ComposeError) as info:
        load(SHLINK)
    assert [p.field for p in info.value.problems] == ["services.php.build"]
    assert not [w for w in info.value.warnings if "another service's task" in w], info.value.warnings


def test_a_task_group_member_s_links_are_still_warned_about() -> None:
    text = SHLINK.replace("    build: .\n", "    image: php:8\n    network_mode: service:nginx\n")
    definition = load(text)
    assert any("services.php.links: php runs in another service's task" in w for w in definition.warnings)


# Actual Budget's file: `environment:` holding only comments is null, which Compose refuses ("services.
# actual_server.environment must be a mapping"); p2porch refuses it naming the field.
def test_an_environment_of_comments_only_is_refused_naming_it() -> None:
    message = refusal(
        """
        services:
          actual_server:
            image: actualbudget/actual-server:latest
            environment:
              # - ACTUAL_HTTPS_KEY=/data/selfhost.key
        """
    )
    assert "services.actual_server.environment: expected a mapping or a list, got nothing" in message, message


# bluepuma77's Swarm Traefik stack: global services on host-mode ports, a node template as hostname,
# $$ in deploy labels; the socket proxy's config content with $$ (a literal $ in the file).
SWARM_TRAEFIK = """
services:
  traefik:
    image: traefik:v2.10
    hostname: '{{.Node.Hostname}}'
    ports:
      - {target: 80, published: 80, protocol: tcp, mode: host}
    deploy:
      mode: global
      placement: {constraints: [node.role==manager]}
      labels:
        - traefik.http.middlewares.myauth.basicauth.users=test:$$apr1$$H6uskkkW$$IgXLP6ewTrSuBkTrqE8wj/
    configs:
      - {source: nginx, target: /etc/nginx/nginx.conf}
configs:
  nginx:
    content: |
      if ($$request_method != GET) { return 405; }
"""


def test_the_swarm_traefik_shape_maps_as_swarm_reads_it() -> None:
    definition = load(SWARM_TRAEFIK)
    spec = spec_of(definition, "traefik")
    assert spec["mode"] == "global"
    assert spec["publish"] == [{"target": 80, "published": 80, "protocol": "tcp", "mode": "host"}]
    assert spec["container"]["hostname"] == "{{.Node.Hostname}}"
    assert spec["constraints"] == ["node.role==voter"]  # a manager is a Raft voter here (docs/stack.md)
    auth = spec["service_labels"]["traefik.http.middlewares.myauth.basicauth.users"]
    assert auth == "test:$apr1$H6uskkkW$IgXLP6ewTrSuBkTrqE8wj/"
    assert definition.model["configs"]["nginx"]["content"] == "if ($request_method != GET) { return 405; }\n"


# Rybbit's and Jitsu's forms: a whole port spec from a variable's default, nested defaults, JSON with
# a variable inside; Countly's null network entries and quoted values kept with their quotes.
FORMS = """
services:
  backend:
    image: ghcr.io/rybbit-io/rybbit-backend:${IMAGE_TAG:-latest}
    ports:
      - "${HOST_BACKEND_PORT:-127.0.0.1:3001:3001}"
    environment:
      NEXTAUTH_URL: "${JITSU_PUBLIC_URL:-${NEXTAUTH_URL:-http://localhost:${JITSU_UI_PORT:-3000}/}}"
      TASK_LOG: '{"port":5432,"password":"${POSTGRES_PASSWORD:-default}"}'
    mem_limit: 2g
    cpus: 2.0
    networks:
      countly:
  api:
    image: countly/api:latest
    environment:
      - COUNTLY_CONFIG__FILESTORAGE="gridfs"
    networks:
      countly:
networks:
  countly:
"""


def test_ports_from_a_default_nested_defaults_and_null_network_entries() -> None:
    definition = load(FORMS, {"JITSU_UI_PORT": "3100"})
    backend = spec_of(definition, "backend")
    assert backend["image"] == "ghcr.io/rybbit-io/rybbit-backend:latest"
    published = {"target": 3001, "published": 3001, "protocol": "tcp", "host_ip": "127.0.0.1"}
    assert backend["publish"] == [published]
    assert backend["env"]["NEXTAUTH_URL"] == "http://localhost:3100/"
    assert backend["env"]["TASK_LOG"] == '{"port":5432,"password":"default"}'
    assert backend["limit_memory_bytes"] == 2 << 30
    assert backend["limit_cpu_nanos"] == 2_000_000_000
    assert [n["target"] for n in backend["networks"]] == ["app_countly"]
    assert spec_of(definition, "api")["env"]["COUNTLY_CONFIG__FILESTORAGE"] == '"gridfs"'
