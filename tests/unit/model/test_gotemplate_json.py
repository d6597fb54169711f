"""Docker's ``{{json .}}`` (model/gotemplate_json.py) and fmt's ``%#v``/``%+v``/``%#q``, against what Go
prints: compact JSON, a map's keys sorted, a struct's fields in order, Go's float and string forms, no HTML
escaping (docker/cli's ``json`` turns it off)."""

from __future__ import annotations

import pytest

from p2porch.cli.goformat import render
from p2porch.model.gotemplate import MISSING, Struct, go_json, sprintf


class _Time(float):
    def json_value(self) -> str:
        return "2026-12-05T09:00:00Z"


@pytest.mark.parametrize(
    ("value", "printed"),
    [
        ({"b": [1, 2], "a": {"y": True, "x": None}}, '{"a":{"x":null,"y":true},"b":[1,2]}'),
        (
            Struct("swarm.Port", Protocol="tcp", TargetPort=80, PublishMode="ingress"),
            '{"Protocol":"tcp","TargetPort":80,"PublishMode":"ingress"}',
        ),  # fmt: skip
        ([1.0, 2.5, 1e-7, 1e21, 0.00001, 123456789.0, -0.0], "[1,2.5,1e-7,1e+21,0.00001,123456789,-0]"),
        ("<b> & 'q' \"x\"", '"<b> & \'q\' \\"x\\""'),  # Docker: SetEscapeHTML(false)
        ("a\u2028b\u2029\x01\x08\x0c\n\t\x7f", '"a\\u2028b\\u2029\\u0001\\b\\f\\n\\t\x7f"'),
        ("caf\u00e9 \U0001f600 \udcff", '"caf\u00e9 \U0001f600 \ufffd"'),  # a byte that is no UTF-8: U+FFFD
        (None, "null"),
        (MISSING, "null"),
        ([], "[]"),
        ({}, "{}"),
        (_Time(0), '"2026-12-05T09:00:00Z"'),
    ],
)
def test_json_prints_as_dockers(value, printed) -> None:
    assert go_json(value) == printed


def test_json_refuses_nan_as_go_and_docker_prints_nothing() -> None:
    with pytest.raises(ValueError, match="unsupported value: NaN"):
        go_json(float("nan"))
    assert render("[{{json .X}}]", {"X": float("inf")}) == "[]"


def test_json_of_the_template_data_is_compact() -> None:
    """The brief's case: ``{{json .}}`` printed ``{"a": 1, "b": [1, 2]}`` (Python's spacing)."""
    assert render("{{json .}}", {"b": [1, 2], "a": "<x>"}) == '{"a":"<x>","b":[1,2]}'


@pytest.mark.parametrize(
    ("template", "args", "printed"),
    [
        ("%#v", ['a"b\n'], '"a\\"b\\n"'),
        ("%#v|%#v|%#v|%#v", [42, True, 1.0, 2.5], "42|true|1|2.5"),
        ("%#v", [["a", 1, None]], '[]interface {}{"a", 1, interface {}(nil)}'),
        ("%#v", [{"b": 1, "a": "x"}], 'map[string]interface {}{"a":"x", "b":1}'),
        ("%#v", [None], "<nil>"),
        (
            "%#v",
            [Struct("template.Platform", Architecture="x86_64", OS="linux")],
            'template.Platform{Architecture:"x86_64", OS:"linux"}',
        ),  # fmt: skip
        (
            "%+v",
            [Struct("template.Platform", Architecture="x86_64", OS="linux")],
            "{Architecture:x86_64 OS:linux}",
        ),  # fmt: skip
        ("%+v|%v", [{"k": [1]}, Struct("t", A=1)], "map[k:[1]]|{1}"),
        ("%#q|%#q|%#q|%q", ["ab", "a`b", "a\nb", "ab"], '`ab`|"a`b"|"a\\nb"|"ab"'),
        ("%T %T %T %T %T", ["s", 1, 1.5, True, {"a": 1}], "string int float64 bool map[string]interface {}"),
        ("%x %X %x", ["hi", "hi", 255], "6869 6869 ff"),
        ("%d %s", [1], "1 %!s(MISSING)"),
        ("%d", [1, "x", 2.5], "1%!(EXTRA string=x, float64=2.5)"),
    ],
)
def test_printf_verbs_as_go(template, args, printed) -> None:
    assert sprintf(template, args) == printed


def test_a_list_rows_json_is_html_escaped_as_docker_clis_rows_marshal_themselves() -> None:
    """docker/cli's list rows implement MarshalJSON with ``json.Marshal`` (HTML escaping on), so its
    ``stack services --format json`` prints ``"Ports":"*:4566-\\u003e4566/tcp"``; a bool stays one
    (``"Self":true``); a plain value's ``{{json .}}`` is not escaped."""
    import argparse

    from p2porch.cli.goformat import listing

    args = argparse.Namespace(format="json")
    rows = [["web", "*:8080->80/tcp", True]]
    printed = '{"Name":"web","Ports":"*:8080-\\u003e80/tcp","Self":true}'
    assert listing(args, ["name", "ports", "self"], rows) == printed
    args.format = "{{json .}} {{json .Ports}}"
    assert listing(args, ["name", "ports", "self"], rows) == printed + ' "*:8080->80/tcp"'
    assert go_json({"a": "<&>"}, escape_html=True) == '{"a":"\\u003c\\u0026\\u003e"}'


def test_an_absent_value_reaches_print_and_printf_as_nil_as_in_go() -> None:
    """Go passes a missing map key to a function's ``any`` argument as nil: ``<nil>``, ``%!s(<nil>)``;
    printed by the action itself it stays ``<no value>``."""
    from p2porch.model.gotemplate import render

    assert render('{{printf "%v|%s|%d" .no .no .no}}', {}) == "<nil>|%!s(<nil>)|%!d(<nil>)"
    assert render("{{print .no}} {{.no}} {{json .no}}", {}, {"json": go_json}) == "<nil> <no value> null"
