"""Constructs of the fifteenth real-world sample (docs/stack.md, "Fifteenth sample"), each reproduced by a
minimal hand-written file: ``${COMPOSE_PROJECT_NAME}`` read as the stack's name (compose-go sets it to
the project name, ``docker compose -p NAME``), where the loader left it blank; a label or sysctl of the
list form written with blanks around ``=`` (``labels: [APP = REST_SERVICE]``, Minerva's Swarm stack),
which was refused; and the sample's Swarm, monitoring and database-cluster shapes, checked right."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from p2porch.stack.source import stack_source

from .compose_text import load, refusal, spec_of
from .test_stack_cli_names import run

# compose-go (loader.go, projectName) puts the project name into the interpolation environment,
# overriding the shell's COMPOSE_PROJECT_NAME; the stack name is p2porch's project name (`-p NAME`).
PROJECT_NAME = """
name: ${COMPOSE_PROJECT_NAME:-fallback}
x-env: &env
  PROJECT: ${COMPOSE_PROJECT_NAME}
services:
  web:
    image: nginx
    environment:
      <<: *env
      BARE: ""
    labels:
      traefik.http.routers.${COMPOSE_PROJECT_NAME}-web.rule: Host(`x`)
      stack: ${COMPOSE_PROJECT_NAME}
    volumes: [data:/data]
    configs: [{source: inline, target: /etc/inline.conf}]
configs:
  inline:
    content: |
      project=${COMPOSE_PROJECT_NAME}
volumes:
  data:
    name: ${COMPOSE_PROJECT_NAME}-data
"""


def test_compose_project_name_is_the_stack_name() -> None:
    definition = load(PROJECT_NAME, environ={"COMPOSE_PROJECT_NAME": "from-the-shell"})
    web = spec_of(definition, "web")
    assert definition.model["name"] == "app"
    assert web["env"]["PROJECT"] == "app"
    assert web["labels"]["stack"] == "app"
    assert web["mounts"][0]["source"] == "app-data"
    assert not any("COMPOSE_PROJECT_NAME" in w for w in definition.warnings)
    # the label's key is not interpolated (Compose interpolates values only)
    assert "traefik.http.routers.${COMPOSE_PROJECT_NAME}-web.rule" in web["labels"]


def test_a_bare_compose_project_name_variable_reads_the_stack_name() -> None:
    text = "services:\n  web:\n    image: nginx\n    environment: [COMPOSE_PROJECT_NAME]\n"
    assert spec_of(load(text), "web")["env"] == {"COMPOSE_PROJECT_NAME": "app"}


def test_stack_config_prints_the_stack_name_it_is_given(tmp_path, capsys) -> None:
    (tmp_path / "compose.yaml").write_text(PROJECT_NAME)
    assert run(["stack", "config", "-c", str(tmp_path / "compose.yaml"), "shop"]) == 0
    out = yaml.safe_load(capsys.readouterr().out)
    assert out["name"] == "shop"
    assert out["services"]["web"]["environment"]["PROJECT"] == "shop"
    assert out["configs"]["inline"]["content"] == "project=shop\n"


def test_the_config_content_holds_the_stack_name(tmp_path) -> None:
    (tmp_path / "compose.yaml").write_text(PROJECT_NAME)
    definition = stack_source([str(tmp_path / "compose.yaml")], environ={}).load("shop")
    assert definition.model["configs"]["inline"]["content"] == "project=shop\n"


# Minerva-System's Swarm stack: `labels: [APP = REST_SERVICE]` under deploy. compose-go and Swarm split
# at the first "=" and keep the blanks ("APP " = " REST_SERVICE"); a service spec takes no key with a
# blank, so the key loses the blanks around it and the value stays as written.
BLANKS = """
services:
  rest:
    image: luksamuk/minerva_rest:0.2.2
    labels: ["com.example.tier = api", "plain=1", bare]
    sysctls: ["net.core.somaxconn = 1024"]
    deploy:
      labels: [APP = REST_SERVICE]
"""


def test_a_list_label_with_blanks_around_the_equals_sign_keeps_its_key() -> None:
    rest = spec_of(load(BLANKS), "rest")
    assert rest["service_labels"] == {"APP": " REST_SERVICE"}
    assert rest["labels"]["com.example.tier"] == " api"
    assert rest["labels"]["plain"] == "1" and rest["labels"]["bare"] == ""
    assert dict(rest["container"]["sysctls"]) == {"net.core.somaxconn": " 1024"}


def test_a_network_label_list_with_blanks_keeps_its_key() -> None:
    text = "services:\n  a:\n    image: nginx\n    networks: [n]\nnetworks:\n  n:\n    labels: [team = db]\n"
    network = {n.key: n for n in load(text).networks}["n"]
    assert dict(network.labels) == {"team": " db"}


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("services:\n  a:\n    image: nginx\n    labels: ['my app=1']\n", "services.a.labels"),
        ("services:\n  a:\n    image: nginx\n    deploy: {labels: [' = x']}\n", "services.a.deploy.labels"),
        ("services:\n  a:\n    image: nginx\n    environment: ['A = b']\n", "services.a.environment"),
    ],
)
def test_a_blank_inside_a_key_is_still_refused_naming_it(text: str, field: str) -> None:
    assert field in refusal(text)


# The sample's shapes, checked right (each as compose-go and Swarm read it).


# jjduhamel's Swarm stacks: every service on the default network, itself the external network `proxy`
# in the old `external: {name: proxy}` form.
def test_a_default_network_that_is_external_by_its_old_form() -> None:
    text = """
    version: "3"
    networks:
      default:
        external:
          name: proxy
    services:
      cadvisor:
        image: google/cadvisor:latest
        volumes: ["/:/rootfs:ro", "/var/run:/var/run:rw"]
        ports: [8080:8080]
        deploy: {mode: global}
    """
    cadvisor = spec_of(load(text), "cadvisor")
    assert [n["target"] for n in cadvisor["networks"]] == ["proxy"]
    assert cadvisor["mode"] == "global"
    assert [(m["source"], m["readonly"]) for m in cadvisor["mounts"]] == [("/", True), ("/var/run", False)]


# grafana/loki's HA file: three services each publishing the bare "3100", each given a port of its own.
def test_bare_container_ports_on_several_services_are_each_assigned() -> None:
    text = """
    services:
      gateway: {image: nginx, ports: ["80", "3100"]}
      loki-1: {image: grafana/loki, ports: ["3100", "7946"]}
      loki-2: {image: grafana/loki, ports: ["3100", "7946"]}
    """
    definition = load(text)
    for short in ("gateway", "loki-1", "loki-2"):
        publish = spec_of(definition, short)["publish"]
        assert all(p["published"] is None and p["mode"] == "ingress" for p in publish)


# tsvetkov-vladimir's Patroni stack: etcd with `endpoint_mode: dnsrr` and host-mode long-syntax ports;
# martadinata666's GitLab: one target published twice ("22:22" and "2022:22").
def test_dnsrr_with_host_ports_and_one_target_published_twice() -> None:
    text = """
    services:
      etcd1:
        image: etcd
        ports:
          - {target: 2379, published: 2379, protocol: tcp, mode: host}
          - {target: 2380, published: 2380, protocol: tcp, mode: host}
        deploy: {replicas: 1, endpoint_mode: dnsrr, restart_policy: {condition: any}}
      web:
        image: gitlab/gitlab-ee:15.4.3-ee.0
        ports: ["22:22", "2022:22"]
    """
    definition = load(text)
    etcd = spec_of(definition, "etcd1")
    assert etcd["endpoint_mode"] == "dnsrr"
    assert [(p["published"], p["mode"]) for p in etcd["publish"]] == [(2379, "host"), (2380, "host")]
    assert [(p["target"], p["published"]) for p in spec_of(definition, "web")["publish"]] == [
        (22, 22),
        (22, 2022),
    ]


# ithaquaKr's Redis file: `volumes:` holding only nothing (a null), no mounts, as compose-go reads it.
def test_a_null_volumes_key_is_no_mounts() -> None:
    text = "services:\n  r:\n    image: bitnami/redis\n    volumes:\n    ports: ['6380:6379']\n"
    assert spec_of(load(text), "r")["mounts"] == []


# Koyirov's templated config: `template_driver: golang` is carried to the config (rendered per task),
# no longer warned (it was stored and mounted as written).
def test_a_templated_config_is_carried_not_warned() -> None:
    text = """
    services:
      web: {image: nginx, configs: [{source: web-html, target: /usr/share/nginx/html/index.html}]}
    configs:
      web-html: {content: "{{ .Service.Name }}", template_driver: golang}
    """
    definition = load(text)
    assert not any("template_driver" in w for w in definition.warnings), definition.warnings
    assert [o.template_driver for o in definition.objects] == ["golang"]


# Refused rightly, as Compose refuses them: a service writing `restart` twice (martadinata666's
# ONLYOFFICE file; go-yaml: "mapping key already defined") and a restart policy that is none of
# Compose's (kerrickchan's `restart: unless`; the engine: "invalid restart policy").
@pytest.mark.parametrize(
    ("text", "words"),
    [
        (
            "services:\n  app:\n    image: onlyoffice/documentserver\n    restart: unless-stopped\n"
            "    restart: unless-stopped\n",
            "duplicate key 'restart'",
        ),
        ("services:\n  m:\n    image: mongo\n    restart: unless\n", "services.m.restart"),
    ],
)
def test_what_compose_refuses_is_refused(text: str, words: str) -> None:
    assert words in refusal(text)


# The trimmed copies of the sample in tests/unit/stack/corpus/, read as Swarm would create them.
CORPUS = Path(__file__).parent / "corpus"


def test_the_samples_swarm_stacks_map_as_swarm_creates_them() -> None:
    minerva = stack_source([str(CORPUS / "minerva-swarm" / "docker-stack.yml")], environ={}).load("mn")
    by_short = {s.short_name: s.spec for s in minerva.services}
    assert by_short["rest"]["service_labels"] == {"APP": " REST_SERVICE"}
    assert by_short["rest"]["replicas"] == 2
    assert by_short["rest"]["constraints"] == ["node.role==replica"]  # a Swarm worker
    assert by_short["runonce"]["restart"]["condition"] == "on-failure"
    assert [n["target"] for n in by_short["frontend"]["networks"]] == ["mn_minerva_system"]
    grid = stack_source([str(CORPUS / "selenium-grid-swarm" / "docker-stack.yml")], environ={}).load("grid")
    chrome = {s.short_name: s.spec for s in grid.services}["chrome"]
    assert chrome["entrypoint"] == ["bash", "-c", 'SE_OPTS="--host $HOSTNAME" /opt/bin/entry_point.sh']
    assert chrome["container"]["shm_size_bytes"] == 2 * 1024**3
    etcd = stack_source([str(CORPUS / "etcd-dnsrr-swarm" / "docker-stack.yml")], environ={}).load("pa")
    spec = etcd.services[0].spec
    assert spec["endpoint_mode"] == "dnsrr" and {p["mode"] for p in spec["publish"]} == {"host"}
    assert [n.key for n in etcd.networks] == ["patroni"]
