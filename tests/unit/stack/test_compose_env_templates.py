"""Compose environment values that are not Swarm service templates pass through literally: ``docker
compose up`` never expands ``{{...}}`` and real files carry templates meant for the application
(watchtower, diun, Jinja-like defaults). A value that checks as a Swarm template is still expanded per task;
``service create --env`` stays strict (Swarm's refusal)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2porch.errors import ConfigError
from p2porch.model import ServiceSpec
from p2porch.model.templates import TemplateContext, check, expand, literal
from p2porch.stack import load_stack

from .compose_text import load, spec_of

WATCHTOWER = "{{range .}}{{.Message}}{{println}}{{end}}"
DIUN = "{{ .Entry.Image }} is out: {{ .Entry.Status }}"
JINJA = "{{ db_user | default('admin') }}"
CONTEXT = TemplateContext("s1", "app_web", "n1", "node-a", "t1", 3, service_labels={"x": "y"})

# the characters that matter to Go's lexer: delimiters, trim markers, quotes, escapes, comments
_NASTY = st.text(alphabet=st.sampled_from(list("{}{}-\"`\\/* .|()$\n\tax'é")), max_size=40)


@settings(max_examples=500, deadline=None)
@given(_NASTY)
def test_a_literal_expands_to_exactly_the_original_text(text: str) -> None:
    written = literal(text)
    assert expand(written, CONTEXT) == text
    assert check(written, "env.X") == text  # and it passes Swarm's check


@pytest.mark.parametrize(
    "text",
    [
        WATCHTOWER,
        DIUN,
        JINJA,
        "{{{{",
        "{{- x -}}",
        '{{"{{"}}',
        "{{/* comment */}}",
        'a "b" `c` \\d }} {{',
        "}}{{",
        "{{",
        "",
    ],
)
def test_nasty_values_round_trip(text: str) -> None:
    assert expand(literal(text), CONTEXT) == text


def test_application_templates_in_compose_environment_pass_through_literally() -> None:
    definition = load(
        f"""
        services:
          watchtower:
            image: containrrr/watchtower
            environment:
              WATCHTOWER_NOTIFICATION_TEMPLATE: "{WATCHTOWER}"
              DIUN_NOTIF_MAIL_TEMPLATEBODY: "{DIUN}"
              DB_USER: "{JINJA}"
              PLAIN: "no braces"
        """
    )
    env = spec_of(definition, "watchtower")["env"]  # spec_of: ServiceSpec accepts it (checked templates)
    assert {k: expand(v, CONTEXT) for k, v in env.items()} == {
        "WATCHTOWER_NOTIFICATION_TEMPLATE": WATCHTOWER,
        "DIUN_NOTIF_MAIL_TEMPLATEBODY": DIUN,
        "DB_USER": JINJA,
        "PLAIN": "no braces",
    }
    (warning,) = definition.warnings  # one per service, naming the variables
    assert "services.watchtower.environment" in warning
    assert "DB_USER, DIUN_NOTIF_MAIL_TEMPLATEBODY, WATCHTOWER_NOTIFICATION_TEMPLATE" in warning
    assert "PLAIN" not in warning
    # `stack config` prints the file's own text
    printed = definition.model["services"]["watchtower"]["environment"]
    assert printed["WATCHTOWER_NOTIFICATION_TEMPLATE"] == WATCHTOWER


def test_the_warning_never_shows_a_value() -> None:
    definition = load(
        """
        services:
          app:
            image: busybox
            environment:
              - "DB_PASSWORD={{ s3cr3t-Pa55 }}"
        """
    )
    assert spec_of(definition, "app")["env"]["DB_PASSWORD"] == literal("{{ s3cr3t-Pa55 }}")
    assert definition.warnings and not any("s3cr3t" in w for w in definition.warnings)


def test_swarm_templates_are_still_expanded_per_task_without_a_warning() -> None:
    definition = load(
        """
        services:
          web:
            image: nginx
            labels: {x: y}
            environment:
              HOST: "{{.Node.Hostname}}"
              SLOT: "db-{{.Task.Slot}}"
              LABEL: '{{index .Service.Labels "x"}}'
        """
    )
    env = spec_of(definition, "web")["env"]
    assert env == {
        "HOST": "{{.Node.Hostname}}",
        "SLOT": "db-{{.Task.Slot}}",
        "LABEL": '{{index .Service.Labels "x"}}',
    }
    assert {k: expand(v, CONTEXT) for k, v in env.items()} == {"HOST": "node-a", "SLOT": "db-3", "LABEL": "y"}
    assert definition.warnings == ()


def test_env_file_values_and_a_sidecars_environment_are_kept_literally_too() -> None:
    text = f"""
services:
  web:
    image: nginx
    env_file: [web.env]
  notify:
    image: busybox
    network_mode: service:web
    environment: {{TEMPLATE: "{DIUN}"}}
"""
    stack = load_stack("s", text, lambda path: 'BODY="{{ .Entry.Image }}"\n', base_dir="/srv")
    web = ServiceSpec.from_dict(stack.by_name()["s-web"].spec)
    assert [(k, expand(v, CONTEXT)) for k, v in web.env] == [("BODY", "{{ .Entry.Image }}")]
    (side,) = web.sidecars
    assert [(k, expand(v, CONTEXT)) for k, v in side.env] == [("TEMPLATE", DIUN)]
    assert len([w for w in stack.warnings if "passed to the task as written" in w]) == 2


def test_service_create_env_stays_strict() -> None:
    with pytest.raises(ConfigError) as info:
        ServiceSpec.from_dict({"name": "w", "image": "x", "env": {"BODY": DIUN}})
    assert info.value.field == "env.BODY"


def test_a_range_over_swarms_context_is_not_a_swarm_template() -> None:
    """Go ranges over no struct (``range can't iterate over {...}``): Swarm refuses it, so it is the
    application's text (it printed ``xxx``, one per field of the context)."""
    definition = load(
        'services:\n  app:\n    image: busybox\n    environment: {LOOP: "{{range .}}x{{end}}"}\n'
    )
    assert expand(spec_of(definition, "app")["env"]["LOOP"], CONTEXT) == "{{range .}}x{{end}}"
