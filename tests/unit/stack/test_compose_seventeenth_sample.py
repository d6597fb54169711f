"""Constructs of the seventeenth real-world sample (docs/stack.md, "Seventeenth sample"), each reproduced by
a minimal hand-written file: an env file written `KEY: value`, which compose-go's dotenv reads ("also
supports yaml-style value declaration") and which was refused; a Windows bind source (trajano's
``c:/www:/config``), which was read as a volume named ``c`` (short syntax) or joined to the project
directory (long syntax) and is now refused as a Windows path; an external network's ``driver``, which was
mapped (or refused) as if the stack created the network; and the sample's Swarm shapes, checked right."""

from __future__ import annotations

from pathlib import Path

import pytest

from p2porch.errors import ConfigError
from p2porch.stack import parse_dotenv
from p2porch.stack.source import stack_source

from .compose_text import load, refusal, spec_of

CORPUS = Path(__file__).parent / "corpus"


# compose-go dotenv/parser.go: a key ends at the first '=' or ':' ("library also supports yaml-style
# value declaration"), so `KEY: value` is KEY=value, in an env_file and in the project's .env.
def test_an_env_file_line_written_key_colon_value_is_read_as_compose_go_reads_it() -> None:
    text = 'A: 1\nURL: http://db:5432/x # note\nB=c:d\nQ: "x: y"\nexport E: 5\nEMPTY:\n'
    assert parse_dotenv(text, "app.env") == {
        "A": "1",
        "URL": "http://db:5432/x",
        "B": "c:d",  # the first of '=' and ':' ends the key
        "Q": "x: y",
        "E": "5",
        "EMPTY": "",
    }


def test_the_projects_env_file_may_use_key_colon_value_too(tmp_path: Path) -> None:
    (tmp_path / "compose.yaml").write_text("services:\n  web:\n    image: nginx:${TAG}\n")
    (tmp_path / ".env").write_text("TAG: 1.27\n")
    definition = stack_source([str(tmp_path / "compose.yaml")], environ={}).load("app")
    assert spec_of(definition, "web")["image"] == "nginx:1.27"


def test_a_compose_file_given_as_an_env_file_is_refused_at_its_first_list_item() -> None:
    """felipefontoura's postgres stack names itself (`stack.yml`) as its env_file: compose-go reads
    `services:` and `image: postgres:15` as variables and stops at `- network_public`, as here."""
    with pytest.raises(ConfigError) as info:
        parse_dotenv("services:\n  db:\n    image: postgres:15\n    networks:\n      - public\n", "stack.yml")
    assert "stack.yml line 5: invalid variable name '- public'" in info.value.message


def test_the_raw_format_still_splits_at_the_first_equals_sign_only() -> None:
    assert parse_dotenv("A=b: c\n", "raw.env", raw=True) == {"A": "b: c"}
    with pytest.raises(ConfigError):
        parse_dotenv("A: b\n", "raw.env", raw=True)


# trajano's stack: `c:/www:/config`. compose-go's ParseVolume keeps a drive letter's colon in the source
# (isWindowsDrive), so the source is `c:/www`: a path no Linux node can bind (the engine refuses it).
@pytest.mark.parametrize(
    ("entry", "source"),
    [
        ('"c:/www:/config"', "'c:/www'"),
        ('"C:\\\\Users\\\\me\\\\data:/data:ro"', "data' is"),  # the source ends at the colon after the drive
        ('"\\\\\\\\.\\\\pipe\\\\docker_engine:\\\\\\\\.\\\\pipe\\\\docker_engine"', "pipe"),
        ("{type: bind, source: 'D:/data', target: /data}", "'D:/data' is"),
    ],
)
def test_a_windows_bind_source_is_refused_naming_the_field(entry: str, source: str) -> None:
    message = refusal(f"services:\n  web:\n    image: nginx\n    volumes: [{entry}]\n")
    assert "services.web.volumes[0]" in message and "is a Windows path" in message and source in message


def test_a_one_letter_volume_is_still_a_named_volume() -> None:
    """A drive needs a target after its path (`c:/www:/config`); `v:/data` and `v:/data:ro` name volume v."""
    for entry in ("v:/data", "v:/data:ro"):
        text = f"services:\n  web:\n    image: nginx\n    volumes: ['{entry}']\nvolumes: {{v: {{}}}}\n"
        assert spec_of(load(text), "web")["mounts"][0]["source"] == "app_v"


# Herculano's Airflow file: `my-net: {driver: bridge, external: true}`. An external network is looked up,
# never created (Compose and Swarm ignore its driver): no "becomes an overlay" note, no driver refusal.
def test_an_external_networks_driver_is_ignored_with_one_note() -> None:
    text = """
    services:
      web: {image: nginx, networks: [edge, lan]}
    networks:
      edge: {driver: bridge, external: true}
      lan: {driver: macvlan, external: true, name: office-lan}
    """
    definition = load(text)
    assert [n["target"] for n in spec_of(definition, "web")["networks"]] == ["edge", "office-lan"]
    notes = [w for w in definition.warnings if ".driver" in w]
    assert sorted(notes) == [
        "ignoring networks.edge.driver: an external network already exists",
        "ignoring networks.lan.driver: an external network already exists",
    ]


def test_a_created_networks_unsupported_driver_is_still_refused() -> None:
    text = "services:\n  web: {image: nginx, networks: [lan]}\nnetworks:\n  lan: {driver: macvlan}\n"
    assert "networks.lan.driver" in refusal(text)


# Refused rightly, as compose-go refuses it ("depends on undefined service"): gogolivan's Loki and
# Promtail stacks and msounkere's MinIO stack name a service of another stack (or a typo) in depends_on;
# docker stack deploy ignores depends_on and accepts them (docs/stack.md says why p2porch does not).
def test_depends_on_a_service_of_another_stack_is_refused_naming_the_entry() -> None:
    text = "services:\n  promtail:\n    image: grafana/promtail\n    depends_on: [loki]\n"
    assert "services.promtail.depends_on.loki: service 'loki' is not defined" in refusal(text)


def test_the_samples_swarm_shapes_map_as_swarm_creates_them() -> None:
    traefik = stack_source([str(CORPUS / "traefik-deploy-anchor-swarm" / "docker-compose.yml")], environ={})
    by_short = {s.short_name: s.spec for s in traefik.load("t").services}
    # `deploy: {<<: *default-opts}`: the anchor's restart policy, replicas and constraint on both services
    for short in ("traefik", "traefik-socket"):
        spec = by_short[short]
        assert spec["restart"]["condition"] == "on-failure" and spec["restart"]["window_s"] == 20.0
        assert spec["restart"]["max_attempts"] == 3 and spec["constraints"] == ["node.role==voter"]
    assert by_short["traefik"]["labels"]["traefik.http.middlewares.traefik-auth.basicauth.users"] == (
        "user:$apr1$EIGvhK9C$f7Xi/M/fu8kJhlZpjy/cx0"  # `$$` in a label is one `$`
    )
    mattermost = stack_source([str(CORPUS / "mattermost-dnsrr-swarm" / "docker-stack.yml")], environ={})
    mm = {s.short_name: s.spec for s in mattermost.load("mm").services}["mattermost"]
    assert mm["endpoint_mode"] == "dnsrr" and mm["restart"]["max_attempts"] == 5
    assert mm["restart"]["condition"] == "any"  # Swarm's default condition
    assert mm["mounts"][0]["volume_driver"] == "glusterfs"
    mongo = stack_source([str(CORPUS / "mongo-rs-anchors-swarm" / "docker-compose.yml")], environ={})
    by_short = {s.short_name: s.spec for s in mongo.load("m").services}
    # `<<: *mongo-base-entrypoint`, itself `<<: *mongo-base`: the image, the secrets and the entrypoint
    assert by_short["mongo2"]["entrypoint"][:2] == ["bash", "-c"]
    secrets = ["mongo-keyfile", "mongo-username", "mongo-password"]
    assert [s["source"] for s in by_short["mongo2"]["secrets"]] == secrets
    assert by_short["mongo2"]["constraints"] == []  # node.platform.os == linux always holds
    assert by_short["mongo-init"]["entrypoint"] == []  # the base anchor has none


def test_placement_preferences_and_update_and_rollback_orders_are_kept() -> None:
    text = """
    services:
      web:
        image: nginx
        deploy:
          replicas: 6
          placement:
            max_replicas_per_node: 2
            preferences: [{spread: node.labels.zone}, {spread: node.labels.rack}]
          update_config: {order: start-first, failure_action: rollback, monitor: 60s, max_failure_ratio: 0.3}
          rollback_config: {parallelism: 0, order: stop-first, monitor: 30s}
      db:
        image: postgres
        labels: {caddy_controlled_server: null}
        environment: {RABBITMQ_ERLANG_COOKIE: "{{ .Service.ID }}"}
        deploy: {endpoint_mode: dnsrr}
    """
    definition = load(text)
    web, db = spec_of(definition, "web"), spec_of(definition, "db")
    assert web["placement_preferences"] == ["spread=node.labels.zone", "spread=node.labels.rack"]
    assert web["max_replicas_per_node"] == 2
    assert (web["update"]["order"], web["update"]["failure_action"]) == ("start-first", "rollback")
    assert (web["update"]["monitor_s"], web["update"]["max_failure_ratio"]) == (60.0, 0.3)
    assert (web["rollback"]["parallelism"], web["rollback"]["monitor_s"]) == (0, 30.0)
    assert db["endpoint_mode"] == "dnsrr" and db["labels"]["caddy_controlled_server"] == ""
    assert db["env"]["RABBITMQ_ERLANG_COOKIE"] == "{{ .Service.ID }}"  # a Swarm template, expanded per task
