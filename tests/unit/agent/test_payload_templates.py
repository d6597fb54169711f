"""Swarm's templated secrets and configs (``template_driver: golang``): the pure renderer of a value for
one task (model/payload_template.py)."""

from __future__ import annotations

import re

import pytest

from p2porch.errors import ConfigError
from p2porch.model.payload_template import TemplateError, check_driver, names_target, render
from p2porch.model.templates import TemplateContext

CONTEXT = TemplateContext("s42", "web", "n2", "host-2", "t01", 3)
ENV = {"GREETING": "hello", "EMPTY": ""}
FILES = {("secret", "/run/secrets/db_pw"): b"hunter2", ("config", "/etc/app.conf"): b"{{.Task.Slot}}"}


def lookup(kind: str, name: str) -> bytes | None:
    return next((v for (k, t), v in FILES.items() if k == kind and names_target(k, t, name)), None)


def rendered(text: str) -> str:
    return render(text.encode(), CONTEXT, ENV, lookup).decode()


def test_the_output_is_bounded() -> None:
    with pytest.raises(TemplateError, match="output longer than"):
        rendered("{{range 600000}}xx{{end}}")


@pytest.mark.parametrize(
    ("text", "out"),
    [
        ("slot={{.Task.Slot}} host={{ .Node.Hostname }}\n", "slot=3 host=host-2\n"),
        (
            "{{.Service.ID}} {{.Service.Name}} {{.Node.ID}} {{.Task.ID}} {{.Task.Name}}",
            "s42 web n2 t01 web.3.t01",
        ),
        ("{{.Node.Platform.OS}}/{{.Node.Platform.Architecture}}", "linux/x86_64"),
        ('{{env "GREETING"}}, [{{env "UNSET"}}] [{{ env `EMPTY` }}]', "hello, [] []"),
        ('pw={{secret "db_pw"}} same={{secret "/run/secrets/db_pw"}}', "pw=hunter2 same=hunter2"),
        ('{{config "/etc/app.conf"}} {{config "etc/app.conf"}}', "{{.Task.Slot}} {{.Task.Slot}}"),
        ('{{`{{.Raw}}`}} {{"a}}b\\n"}}', "{{.Raw}} a}}b\n"),
        ("a {{/* a comment }} */}}b", "a b"),
        ("no template {x} }} {", "no template {x} }} {"),
    ],
)
def test_fields_functions_and_constants_render_as_go_prints_them(text: str, out: str) -> None:
    assert rendered(text) == out


def test_trim_markers_remove_the_whitespace_beside_them_only() -> None:
    text = "[\n  {{- .Task.Slot -}}\n\t]  {{ .Task.Slot }}  [ {{- .Task.Slot }} ]"
    assert rendered(text) == "[3]  3  [3 ]"
    assert rendered("a\n{{- /* gone */ -}}\nb") == "ab"


def test_bytes_that_are_not_utf8_pass_through() -> None:
    value = b"\xff\x00{{.Task.Slot}}\xfe"
    assert render(value, CONTEXT, ENV, lookup) == b"\xff\x003\xfe"


def test_the_whole_go_language_renders_as_swarmkit_renders_it() -> None:
    """swarmkit's payload templates are Go's text/template: ``if``, ``range``, ``printf``, pipelines,
    ``.Service.Labels`` (these were refused before the one engine, model/gotemplate.py)."""
    labelled = TemplateContext("s42", "web", "n2", "host-2", "t01", 3, service_labels={"tier": "front"})
    text = (
        '{{if eq .Task.Slot "3"}}third{{else}}other{{end}} {{printf "%03d|%-4s|" 7 "x"}}'
        '{{range $k, $v := .Service.Labels}}{{$k}}={{$v | printf "%q"}}{{end}} {{len .Service.Labels}}'
        '{{with $x := env "GREETING"}} {{$x}}{{end}} {{join "-" .Node.ID .Task.Slot}}'
        "{{- /* trimmed */ -}}\n{{ .Service.Labels.tier }}"
    )
    out = render(text.encode(), labelled, ENV, lookup).decode()
    assert out == 'third 007|x   |tier="front" 1 hello n2-3front'  # -}} trimmed the newline


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ('{{nope "x"}}', 'line 1: function "nope" not defined'),
        (
            "{{.Service.Nope}}",  # swarmkit's Service is an anonymous struct: Go names it by its fields
            "line 1, column 2: can't evaluate field Nope in type struct { ID string; Name string; Labels "
            "map[string]string }",
        ),
        ("{{.Service.Labels.absent}}", 'map has no entry for key "absent"'),  # swarmkit's missingkey=error
        ('{{secret "other"}}', "error calling secret: secret target 'other' not found"),
        ('{{config "/run/secrets/db_pw"}}', "config target '/run/secrets/db_pw' not found"),
        ("{{env}}", "wrong number of args for env"),
        ('{{env "A" "B"}}', "wrong number of args for env: got 2"),
        ("{{if .Task.Slot}}x", "unexpected EOF"),
        ("line\n{{ .Task.Slot", "line 2: unclosed action"),
        ("{{}}", "missing value for command"),
        ('{{ "open }}', "line 1: unterminated quoted string"),
        ("a\n\n{{ `open }}", "line 3: unterminated raw quoted string"),
        ("{{/* open }}", "unclosed comment"),
        ("{{" + "`a`" * 40, "unclosed action"),  # one pass: a backtracking matcher never returned
        ("{{range .Task.Slot}}{{end}}", "range can't iterate over a string"),
    ],
)
def test_what_swarm_fails_is_an_error(text: str, words: str) -> None:
    with pytest.raises(TemplateError, match=re.escape(words)):
        rendered(text)


@pytest.mark.parametrize(
    "text",
    [
        "password=topsecret {{nope}}",
        '{{range secret "db_pw"}}{{end}}',  # Go's message would print the value it cannot range over
        '{{end "topsecret"}}',
        '{{if "topsecret" | .Task.Slot}}{{end}}',
        '{{"topsecret" 1}}',
    ],
)
def test_an_error_never_quotes_the_values_text_or_what_it_printed(text: str) -> None:
    with pytest.raises(TemplateError) as info:
        rendered(text)
    assert "topsecret" not in str(info.value) and "hunter2" not in str(info.value)


def test_only_golang_is_a_driver() -> None:
    assert (
        check_driver("golang", "f") == "golang"
        and check_driver("", "f") == ""
        and check_driver(None, "f") == ""
    )
    with pytest.raises(ConfigError, match="--template-driver: unknown template driver 'jinja'") as info:
        check_driver("jinja", "--template-driver")
    assert info.value.field == "--template-driver"
