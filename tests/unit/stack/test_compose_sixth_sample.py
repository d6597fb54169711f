"""Constructs of the sixth real-world sample (docs/stack.md, "Sixth sample"), each reproduced by a
minimal hand-written file: ``label_file`` (labels read from files, as Compose reads them), a
``container_name`` other services reach the service by, and a Go string constant (``{{`...`}}``) in a
Swarm stack's environment value, and a secret whose ``environment:`` variable is in the ``.env``."""

from __future__ import annotations

import textwrap

import pytest

from p2porch.agent.dockerspec import create_request
from p2porch.agent.model import TaskAssignment
from p2porch.cli.stack_objects import object_values
from p2porch.cli.util import UsageError
from p2porch.errors import ConfigError
from p2porch.model import ServiceSpec
from p2porch.model.templates import SAMPLE, TemplateError, expand
from p2porch.stack import load_stack
from p2porch.stack.resolve import ComposeFile
from p2porch.stack.source import stack_source


def _load(files: dict[str, str], texts: dict[str, str], environ: dict[str, str] | None = None):
    """The stack ``app`` of the Compose ``files`` (path -> text); ``texts`` are the other files on disk."""

    def read(path: str) -> str:
        if path not in texts:
            raise FileNotFoundError(path)
        return texts[path]

    compose = [ComposeFile(p, textwrap.dedent(t), p.rsplit("/", 1)[0]) for p, t in files.items()]
    return load_stack("app", compose, read, environ=environ or {})


def _labels(definition, short: str) -> dict[str, str]:
    spec = {s.short_name: s.spec for s in definition.services}[short]
    assert ServiceSpec.from_dict(spec).to_dict() == spec
    return {k: v for k, v in spec["labels"].items() if not k.startswith("p2porch.")}


def test_label_file_labels_reach_the_container_and_labels_win():
    """``label_file`` (Compose 2.32+) was ignored with a warning: the labels a proxy or a monitoring
    agent reads from the container (``traefik.*``) were missing. Compose reads each file like an
    ``env_file``, a later file wins over an earlier one and ``labels:`` wins over the files."""
    definition = _load(
        {
            "/srv/app/compose.yaml": """
                services:
                  web:
                    image: nginx
                    label_file: [./web.labels, ./extra.labels]
                    labels: {tier: front}
                  api:
                    image: api
                    label_file: ./web.labels
            """
        },
        {
            "/srv/app/web.labels": "# routing\ntraefik.enable=true\ntier=back\nhost=${DOMAIN:-local}\n",
            "/srv/app/extra.labels": "tier=middle\nteam='web ops'\n",
        },
        {"DOMAIN": "example.org"},
    )
    assert _labels(definition, "web") == {
        "traefik.enable": "true",
        "tier": "front",
        "host": "example.org",
        "team": "web ops",
    }
    assert _labels(definition, "api") == {"traefik.enable": "true", "tier": "back", "host": "example.org"}
    assert not [w for w in definition.warnings if "label_file" in w]


def test_label_file_paths_are_relative_to_the_first_file_and_merge_by_appending():
    """Every file's relative paths are the project directory's, the first file's (sixteenth sample:
    compose-go resolves them once, on the merged model, against the working directory)."""
    definition = _load(
        {
            "/srv/app/compose.yaml": "services: {web: {image: nginx, label_file: ./base.labels}}",
            "/srv/app/prod/compose.prod.yaml": "services: {web: {label_file: ./prod/prod.labels}}",
        },
        {"/srv/app/base.labels": "a=1\nb=1\n", "/srv/app/prod/prod.labels": "b=2\n"},
    )
    assert _labels(definition, "web") == {"a": "1", "b": "2"}


def test_a_missing_label_file_is_refused_naming_the_service_and_key():
    with pytest.raises(ConfigError) as info:
        _load({"/srv/app/compose.yaml": "services: {web: {image: nginx, label_file: ./nope.labels}}"}, {})
    assert "services.web.label_file" in str(info.value)
    assert "nope.labels" in str(info.value)


@pytest.mark.parametrize(
    "value, texts, message",
    [
        ("./own.labels", {"/srv/app/own.labels": "p2porch.stack=other\n"}, "reserved"),
        ("[{path: ./own.labels}]", {"/srv/app/own.labels": "a=1\n"}, "label_file[0]"),
    ],
)
def test_label_file_contents_and_forms_are_validated(value, texts, message):
    with pytest.raises(ConfigError) as info:
        _load({"/srv/app/compose.yaml": f"services: {{web: {{image: nginx, label_file: {value}}}}}"}, texts)
    assert message in str(info.value)
    assert "services.web.label_file" in str(info.value)


def _networks(definition, short: str) -> dict[str, list[str]]:
    spec = {s.short_name: s.spec for s in definition.services}[short]
    assert ServiceSpec.from_dict(spec).to_dict() == spec
    return {n["target"]: n["aliases"] for n in spec["networks"]}


def test_a_container_name_resolves_to_its_service_on_each_of_its_networks():
    """A tracing demo's database service ``storage`` has ``container_name: mysql`` and its server is
    configured with ``MYSQL_HOST=mysql``; an AI starter kit's ``ollama-cpu`` is reached as ``ollama``.
    Docker's DNS answers a container's name; p2porch ignored it, so nothing answered ``mysql``."""
    definition = _load(
        {
            "/srv/app/compose.yaml": """
                services:
                  storage: {image: openzipkin/zipkin-mysql, container_name: mysql}
                  zipkin: {image: openzipkin/zipkin, container_name: zipkin, environment: [MYSQL_HOST=mysql]}
                  ollama-cpu:
                    image: ollama/ollama
                    container_name: Ollama
                    networks: [demo, default]
                networks: {demo: {}}
            """
        },
        {},
    )
    assert _networks(definition, "storage") == {"app_default": ["mysql"]}
    assert _networks(definition, "zipkin") == {"app_default": []}  # its own name resolves already
    assert _networks(definition, "ollama-cpu") == {"app_demo": ["ollama"], "app_default": ["ollama"]}
    assert [w for w in definition.warnings if "container_name" in w] == [
        "container_name (services storage, zipkin, ollama-cpu): task containers are named by p2porch; "
        "the name resolves to the service (a network alias), as Docker's DNS answers a Compose "
        "container's name"
    ]


def test_a_container_name_that_cannot_resolve_is_named_in_a_warning():
    definition = _load(
        {
            "/srv/app/compose.yaml": """
                services:
                  db: {image: postgres, container_name: cache}
                  cache: {image: redis}
                  api: {image: api, container_name: "${UNSET_NAME}"}
                  web: {image: web, container_name: web..example}
                  worker: {image: worker, container_name: shared}
                  other: {image: worker, container_name: shared}
            """
        },
        {},
    )
    assert all(
        aliases == [] for short in ("db", "api", "web") for aliases in _networks(definition, short).values()
    )
    assert _networks(definition, "worker") == {"app_default": ["shared"]}
    assert _networks(definition, "other") == {"app_default": []}
    warnings = [w for w in definition.warnings if w.startswith("ignoring services.")]
    assert warnings == [
        "ignoring services.db.container_name (cache): 'cache' is the name of another service of the stack",
        "ignoring services.web.container_name (web..example): "
        "'web..example' is not a name the cluster DNS answers",
        "ignoring services.other.container_name (shared): "
        "'shared' already resolves to worker on that network",
    ]


def test_a_go_string_constant_in_an_environment_value_is_printed_as_go_prints_it():
    """A Kafka Swarm file passes ``HOSTNAME_COMMAND: "docker info -f '{{`{{.Swarm.NodeAddr}}`}}'"``:
    Swarm expands environment values as Go templates, which print a string constant as written, so
    the container gets ``docker info -f '{{.Swarm.NodeAddr}}'``. p2porch passed the escape through."""
    command = "docker info -f '{{`{{.Swarm.NodeAddr}}`}}'"
    assert expand(command, SAMPLE) == "docker info -f '{{.Swarm.NodeAddr}}'"
    assert expand('{{"a\\tb"}}.{{ .Task.Slot }}', SAMPLE) == "a\tb.1"
    with pytest.raises(TemplateError):  # Swarm refuses both (they were left as written)
        expand('{{"\\q"}}', SAMPLE)
    with pytest.raises(TemplateError, match="can't evaluate field GatewayID"):
        expand("{{ .GatewayID }}", SAMPLE)
    task = {"task_id": "t0123456789", "service_name": "s-kafka", "service_id": "s1", "slot": 1}
    kafka = TaskAssignment(
        **task, node_name="n1", image="wurstmeister/kafka", env={"HOSTNAME_COMMAND": command}
    )
    _, body = create_request(kafka)
    assert "HOSTNAME_COMMAND=docker info -f '{{.Swarm.NodeAddr}}'" in body["Env"]


def test_a_secret_from_environment_reads_the_env_file_as_compose_does(tmp_path):
    """``secrets: {token: {environment: API_TOKEN}}`` with ``API_TOKEN`` in the project's ``.env``:
    Compose takes the value from its environment, which holds the ``.env``; ``stack deploy`` read the
    shell's only and refused "environment variable API_TOKEN is not set"."""
    (tmp_path / "compose.yaml").write_text(
        "services: {bot: {image: bot, secrets: [token], configs: [motd]}}\n"
        "secrets: {token: {environment: API_TOKEN}}\n"
        "configs: {motd: {environment: MOTD}, unused: {environment: UNUSED}}\n"
    )
    (tmp_path / ".env").write_text("API_TOKEN=from-dotenv\nMOTD=dotenv\nUNUSED=x\n")
    source = stack_source([str(tmp_path / "compose.yaml")], environ={"MOTD": "shell"})
    definition = source.load("app")
    assert definition.object_env == {"API_TOKEN": "from-dotenv", "MOTD": "shell"}  # the shell wins
    assert "from-dotenv" not in repr(definition)  # a secret's value is never in a repr or a log
    values = {obj.key: data for obj, data in object_values(definition)}
    assert values == {"token": b"from-dotenv", "motd": b"shell"}

    (tmp_path / ".env").write_text("MOTD=dotenv\n")
    unset = stack_source([str(tmp_path / "compose.yaml")], environ={}).load("app")
    with pytest.raises(UsageError) as info:
        object_values(unset)
    assert "secrets.token: environment variable API_TOKEN is not set" in str(info.value)
