"""Swarm's templated secrets and configs (``template_driver: golang``): the pure renderer of a value for
one task (model/payload_template.py)."""

from __future__ import annotations

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


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ('{{nope "x"}}', "function 'nope' not defined"),
        ('{{printf "%s" "x"}}', "'printf' is not supported"),
        ("{{.Service.Labels}}", "can't evaluate field .Service.Labels"),
        ("{{if .Task.Slot}}x{{end}}", "'if' is not supported"),
        ('{{secret "other"}}', "secret target 'other' not found"),
        ('{{config "/run/secrets/db_pw"}}', "config target '/run/secrets/db_pw' not found"),
        ("{{env}}", "env needs one string argument"),
        ('{{env "A" | printf}}', "unsupported action"),
        ("line\n{{ .Task.Slot", "line 2: unclosed action"),
        ("{{}}", "missing value"),
        ('{{ "open }}', "line 1: unterminated quoted string"),
        ("a\n\n{{ `open }}", "line 3: unterminated raw quoted string"),
        ("{{/* open }}", "unterminated comment"),
        ("{{" + "`a`" * 40, "unclosed action"),  # one pass: a backtracking matcher never returned
    ],
)
def test_what_swarm_fails_or_p2porch_does_not_render_is_an_error(text: str, words: str) -> None:
    with pytest.raises(TemplateError, match=words):
        rendered(text)


def test_an_error_never_quotes_the_values_text() -> None:
    with pytest.raises(TemplateError) as info:
        rendered("password=topsecret {{nope}}")
    assert "topsecret" not in str(info.value)


def test_only_golang_is_a_driver() -> None:
    assert (
        check_driver("golang", "f") == "golang"
        and check_driver("", "f") == ""
        and check_driver(None, "f") == ""
    )
    with pytest.raises(ConfigError, match="--template-driver: unknown template driver 'jinja'") as info:
        check_driver("jinja", "--template-driver")
    assert info.value.field == "--template-driver"
