"""The one Go text/template engine (model/gotemplate.py) against cases of Go's own ``text/template`` tests
(exec_test.go, parse_test.go), with the output as Go prints it, and Go's errors, with line and column."""

from __future__ import annotations

from typing import Any

import pytest

from p2porch.model.gotemplate import (
    ExecError,
    Method,
    ParseError,
    Struct,
    go_unquote,
    parse,
    render,
    sprintf,
)

#: the data of Go's exec_test.go cases, as JSON-like values (a struct is a Struct)
DATA: dict[str, Any] = {
    "I": 17,
    "X": "x",
    "S": "xyz",
    "U": {"V": "v"},
    "SI": [3, 4, 5],
    "SIEmpty": [],
    "MSI": {"one": 1, "two": 2, "three": 3},
    "MSIone": {"one": 1},
    "MSIEmpty": {},
    "MXI": {},
    "PSI": [21, 22, 23],
    "Empty3": [7, 8],
    "T": Struct("main.T", A="a", B=2),
}

GO_CASES = [
    ("", ""),
    ("some text", "some text"),
    ("-{{.X}}-", "-x-"),
    ("{{.U.V}}", "v"),
    ("{{.MSI.one}} {{.MSI.two}}", "1 2"),
    ("{{.MSI.NO}}", "<no value>"),
    (
        "{{$}}",
        "map[Empty3:[7 8] I:17 MSI:map[one:1 three:3 two:2] MSIEmpty:map[] MSIone:map[one:1] MXI:map[] "
        "PSI:[21 22 23] S:xyz SI:[3 4 5] SIEmpty:[] T:{a 2} U:map[V:v] X:x]",
    ),
    ("<{{.SI}}>", "<[3 4 5]>"),
    ("<{{.MSIone}}>", "<map[one:1]>"),
    ("<{{.T}}> {{.T.A}}", "<{a 2}> a"),
    ("{{with $x := .I}}{{$x}}{{end}}", "17"),
    ("{{$x := $.U.V}}{{$x}}", "v"),
    ("{{$x := 2}}{{$x = 3}}{{$x}}", "3"),
    ("{{$x := 2}}{{if true}}{{$x = 3}}{{end}}{{$x}}", "3"),
    ("{{$x := 1}}{{if true}}{{$x := 2}}{{if true}}{{$x = 3}}{{end}}{{end}}{{$x}}", "1"),
    ("{{if true}}TRUE{{end}}", "TRUE"),
    ("{{if false}}TRUE{{else}}FALSE{{end}}", "FALSE"),
    ("{{if 1}}NON-ZERO{{else}}ZERO{{end}}", "NON-ZERO"),
    ("{{if 0}}NON-ZERO{{else}}ZERO{{end}}", "ZERO"),
    ("{{if 1.5}}NON-ZERO{{else}}ZERO{{end}}", "NON-ZERO"),
    ("{{if 0.0}}NON-ZERO{{else}}ZERO{{end}}", "ZERO"),
    ("{{if ``}}NON-EMPTY{{else}}EMPTY{{end}}", "EMPTY"),
    ("{{if `notempty`}}NON-EMPTY{{else}}EMPTY{{end}}", "NON-EMPTY"),
    ("{{if .SIEmpty}}NON-EMPTY{{else}}EMPTY{{end}}", "EMPTY"),
    ("{{if .SI}}NON-EMPTY{{else}}EMPTY{{end}}", "NON-EMPTY"),
    ("{{if .MSIEmpty}}NON-EMPTY{{else}}EMPTY{{end}}", "EMPTY"),
    ("{{if .MXI.none}}NON-ZERO{{else}}ZERO{{end}}", "ZERO"),
    ("{{if not .MXI.none}}ZERO{{else}}NON-ZERO{{end}}", "ZERO"),
    ("{{if $x := true}}{{with $y := .I}}{{$x}},{{$y}}{{end}}{{end}}", "true,17"),
    ("{{if false}}FALSE{{else if true}}TRUE{{end}}", "TRUE"),
    ("{{if eq 1 3}}1{{else if eq 2 3}}2{{else if eq 3 3}}3{{end}}", "3"),
    ('{{print "hello, print"}}', "hello, print"),
    ("{{print 1 2 3}}", "1 2 3"),
    ('{{print 1 "a" 2 3}}', "1a2 3"),
    ("{{print nil}}", "<nil>"),
    ("{{println 1 2 3}}", "1 2 3\n"),
    ('{{printf "%04x" 127}}', "007f"),
    ('{{printf "%g" 3.5}}', "3.5"),
    ('{{printf "%s" "hello"}}', "hello"),
    ('{{with .I}}{{printf "%d" .}}{{end}}', "17"),
    ('{{with $x := .I}}{{printf "%d" $x}}{{end}}', "17"),
    (
        '{{printf "%5.2f|%-5d|%+d|%q|%v|%t|%x|%X|%c|%o|%b|%e|%%" 3.14159 42 7 "a\\tb" .SI true "hi" '
        "255 65 8 5 1.5}}",
        ' 3.14|42   |+7|"a\\tb"|[3 4 5]|true|6869|FF|A|10|101|1.500000e+00|%',
    ),
    ('{{printf "%d %s" "x"}}', "%!d(string=x) %!s(MISSING)"),
    ('{{printf "%d" 1 2}}', "1%!(EXTRA int=2)"),
    ('{{html "<script>alert(\\"XSS\\");</script>"}}', "&lt;script&gt;alert(&#34;XSS&#34;);&lt;/script&gt;"),
    (
        '{{printf "<script>alert(\\"XSS\\");</script>" | html}}',
        "&lt;script&gt;alert(&#34;XSS&#34;);&lt;/script&gt;",
    ),
    ("{{js `It'd be nice.`}}", "It\\'d be nice."),
    ('{{js "<a=b&c>"}}', "\\u003Ca\\u003Db\\u0026c\\u003E"),
    ('{{"http://www.example.org/"|urlquery}}', "http%3A%2F%2Fwww.example.org%2F"),
    ("{{not true}} {{not false}}", "false true"),
    ("{{and false 0}} {{and 1 0}} {{and 0 true}} {{and 1 1}}", "false 0 0 1"),
    ("{{or 0 0}} {{or 1 0}} {{or 0 true}} {{or 1 1}}", "0 1 true 1"),
    ("{{or 1 (index .SI 10)}} {{and 0 (index .SI 10)}}", "1 0"),  # short circuit: index is never called
    ("{{len .SI}} {{len .MSI}} {{len .S}} {{len `é`}}", "3 3 3 2"),
    ("{{index .SI 0}} {{index .SI 1}} {{index .MSI `one`}} {{index .MSI `XXX`}}", "3 4 1 <no value>"),
    ("{{index .U `V`}} {{index . `U` `V`}}", "v v"),
    ("{{slice .SI}} {{slice .SI 1}} {{slice .SI 1 2}} {{slice .S 1 2}}", "[3 4 5] [4 5] [4] y"),
    ("{{range .SI}}-{{.}}-{{end}}", "-3--4--5-"),
    ("{{range .SIEmpty}}-{{.}}-{{end}}", ""),
    ("{{range .SI}}-{{.}}-{{else}}EMPTY{{end}}", "-3--4--5-"),
    ("{{range .SIEmpty}}-{{.}}-{{else}}EMPTY{{end}}", "EMPTY"),
    ("{{range .MSI}}-{{.}}-{{end}}", "-1--3--2-"),  # keys in order: one, three, two
    ("{{range .MSIEmpty}}-{{.}}-{{else}}EMPTY{{end}}", "EMPTY"),
    ("{{range .Empty3}}-{{.}}-{{else}}EMPTY{{end}}", "-7--8-"),
    ("{{range $x := .SI}}<{{$x}}>{{end}}", "<3><4><5>"),
    ("{{range $x, $y := .SI}}<{{$x}}={{$y}}>{{end}}", "<0=3><1=4><2=5>"),
    ("{{range $x := .MSIone}}<{{$x}}>{{end}}", "<1>"),
    ("{{range $x, $y := .MSIone}}<{{$x}}={{$y}}>{{end}}", "<one=1>"),
    ("{{range $x := .PSI}}<{{$foo:=$x}}{{$x}}>{{end}}", "<21><22><23>"),
    ("{{range .SI}}{{break}}{{.}}{{end}}", ""),
    ("{{range .SI}}{{if eq . 4}}{{continue}}{{end}}{{.}}{{end}}", "35"),
    ("{{range .SI}}{{.}}{{if eq . 4}}{{break}}{{end}}{{end}}", "34"),
    ("{{range $v := 3}}{{$v}}{{end}}", "012"),
    ("{{range .SI}}{{$.X}}{{end}}", "xxx"),
    ("{{with true}}{{.}}{{end}}", "true"),
    ("{{with false}}{{.}}{{else}}FALSE{{end}}", "FALSE"),
    ("{{with 1}}{{.}}{{else}}ZERO{{end}}", "1"),
    ("{{with 0}}{{.}}{{else}}ZERO{{end}}", "ZERO"),
    ("{{with 1.5}}{{.}}{{else}}ZERO{{end}}", "1.5"),
    ("{{with ``}}{{.}}{{else}}EMPTY{{end}}", "EMPTY"),
    ("{{with `notempty`}}{{.}}{{else}}EMPTY{{end}}", "notempty"),
    ("{{with .SI}}{{.}}{{else}}EMPTY{{end}}", "[3 4 5]"),
    ("{{with .MSIone}}{{.}}{{else}}EMPTY{{end}}", "map[one:1]"),
    ("{{with $x := $}}{{$x.U.V}}{{end}}", "v"),
    ("{{with $x := $}}{{$y := $.U.V}}{{$y}}{{end}}", "v"),
    ("{{with 0}}{{.}}{{else with true}}{{.}}{{end}}", "true"),
    ("{{with 0}}{{.}}{{else with false}}{{.}}{{else with `notempty`}}{{.}}{{end}}", "notempty"),
    (
        "{{eq true true}} {{eq true false}} {{eq 1.5 1.5}} {{eq 1 2}} {{eq `xy` `xy`}} {{eq `xy` `xyz`}}",
        "true false true false true false",
    ),
    ("{{eq 3 4 5 6 3}} {{eq 3 4 5 6 7}} {{ne true true}} {{ne 1 2}}", "true false false true"),
    (
        "{{lt 1.5 2.5}} {{lt 1 2}} {{lt `xy` `xyz`}} {{le 2 2}} {{gt 1 2}} {{ge 1 2}} {{ge 2 2}}",
        "true true true true false false true",
    ),
    ("x \r\n\t{{- 3}}", "x3"),
    ("{{3 -}}\n\n\ty", "3y"),
    ("x \r\n\t{{- 3 -}}\n\n\ty", "x3y"),
    ("x \r\n\t{{- /* hi */ -}}\n\n\ty", "xy"),
    ("{{-3}}", "-3"),
    ("a{{/* a comment\nover lines */}}b", "ab"),
    ("{{(.U).V}} {{$.U.V}} {{(index .SI 0)}}", "v v 3"),
    ("{{printf `%d %d %d` (1) (2 | add 3) (add 4 (add 5 6))}}", "1 5 15"),  # a caller's function
    (
        "{{\"\\x41\\u00e9\\101\"}} {{`a\\n`}} {{'a'}} {{0x10}} {{1e3}} {{-1.5}} {{1_000}} {{1e6}}",
        "AéA a\\n 97 16 1000 -1.5 1000 1e+06",
    ),
    ("{{true}} {{false}} {{0.000001}} {{123456.0}}", "true false 1e-06 123456"),
    ('{{"}}"}} {{`{{`}}', "}} {{"),
]


@pytest.mark.parametrize(("template", "out"), GO_CASES)
def test_go_cases_print_as_go_prints_them(template: str, out: str) -> None:
    assert render(template, DATA, {"add": lambda a, b: a + b}) == out


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{{end}}", "template: :1: unexpected {{end}}"),
        ("{{else}}", "template: :1: unexpected {{else}}"),
        ("{{if true}}x", "template: :1: unexpected EOF"),
        ("{{range .SI}}{{else}}{{else}}{{end}}", "template: :1: expected end; found {{else}}"),
        ("{{range}}", "template: :1: missing value for range"),
        ("{{}}", "template: :1: missing value for command"),
        ("{{.X | }}", "template: :1: missing value for command"),
        ("a\n{{$x}}", 'template: :2: undefined variable "$x"'),
        ("{{nope 1}}", 'template: :1: function "nope" not defined'),
        ("x\n{{.X", "template: :2: unclosed action"),
        ("{{/* x", "template: :1: unclosed comment"),
        ('{{"x}}', "template: :1: unterminated quoted string"),
        ("{{break}}", "template: :1: {{break}} outside {{range}}"),
        ("{{with $a, $b := .SI}}{{end}}", "template: :1: too many declarations in with"),
        ("{{.X ! 1}}", "template: :1: unrecognized character in action: U+0021 '!'"),
        ("{{(1}}", "template: :1: unclosed left paren"),
        ('{{"\\q"}}', "template: :1: malformed string constant"),
        ("{{define `x`}}{{end}}", "template: :1: {{define}} is not supported here"),
    ],
)
def test_parse_errors_are_gos(template: str, message: str) -> None:
    with pytest.raises(ParseError) as info:
        parse(template)
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{{.X.Y}}", 'template: :1:2: executing "" at <.X.Y>: can\'t evaluate field Y in type string'),
        ("ab\n cd{{.T.C}}", 'template: :2:5: executing "" at <.T.C>: can\'t evaluate field C in type main.T'),
        (
            "{{index .SI 10}}",
            'template: :1:2: executing "" at <index .SI 10>: error calling index: index out of range: 10',
        ),
        (
            "{{index .SI `x`}}",
            'template: :1:2: executing "" at <index .SI `x`>: error calling index: cannot index '
            "slice/array with type string",
        ),
        ("{{.X 1}}", 'template: :1:2: executing "" at <.X>: X is not a method but has arguments'),
        ("{{1 | .X}}", 'template: :1:6: executing "" at <.X>: X is not a method but has arguments'),
        (
            "{{.T.A 1}}",
            'template: :1:2: executing "" at <.T.A>: A has arguments but cannot be invoked as function',
        ),
        ("{{1 | $.X}}", 'template: :1:6: executing "" at <$.X>: X is not a method but has arguments'),
        ("{{. 1}}", 'template: :1:2: executing "" at <.>: can\'t give argument to non-function .'),
        ("{{range .X}}{{end}}", 'template: :1:8: executing "" at <.X>: range can\'t iterate over x'),
        ("{{range .T}}{{end}}", 'template: :1:8: executing "" at <.T>: range can\'t iterate over {a 2}'),
        ("{{len 3}}", 'template: :1:2: executing "" at <len 3>: error calling len: len of type int'),
        (
            "{{eq true 2}}",
            'template: :1:2: executing "" at <eq true 2>: error calling eq: incompatible types for '
            "comparison",
        ),
        (
            "{{lt true true}}",
            'template: :1:2: executing "" at <lt true true>: error calling lt: invalid type for comparison',
        ),
        ("{{nil}}", 'template: :1:2: executing "" at <nil>: nil is not a command'),
        ("{{if nil}}{{end}}", 'template: :1:5: executing "" at <nil>: nil is not a command'),
        (
            "{{slice .SI 2 1}}",
            'template: :1:2: executing "" at <slice .SI 2 1>: error calling slice: index out of range: 2',
        ),
    ],
)
def test_execution_errors_are_gos_with_line_and_column(template: str, message: str) -> None:
    with pytest.raises(ExecError) as info:
        render(template, DATA)
    assert str(info.value) == message


def test_parse_once_execute_many() -> None:
    template = parse("{{range .}}{{.}},{{end}}")
    assert [template.execute(rows) for rows in ([1, 2], ["a"], [])] == ["1,2,", "a,", ""]


def test_work_is_bounded() -> None:
    """A range walks its value once; output, steps and nesting are capped: nothing runs away."""
    with pytest.raises(ExecError, match="output longer than 1000 characters"):
        parse("{{range 2000}}x{{end}}").execute(None, max_output=1000)
    with pytest.raises(ExecError, match="execution stopped after 1000000 steps"):
        render("{{range 2000000}}{{end}}", None)
    with pytest.raises(ParseError, match="nesting deeper than 100"):
        parse("{{if 1}}" * 101 + "{{end}}" * 101)
    with pytest.raises(ParseError, match="nesting deeper than 100"):
        parse("{{print " + "(print " * 101 + "1" + ")" * 101 + "}}")
    assert render("{{if 1}}" * 100 + "deep" + "{{end}}" * 100, None) == "deep"


def test_function_results_are_bounded_in_memory_and_time() -> None:
    """A result is built before it is written: a range that repeats or doubles a big string stops at
    the results' budget (4x the output cap), never after minutes or gigabytes."""
    repeat = (
        '{{$x := printf "%1000000s" "a"}}'
        '{{range 3000}}{{if eq (len (printf "%s%s%s%s" $x $x $x $x)) 0}}{{end}}{{end}}'
    )
    doubling = '{{$x := "ab"}}{{range 40}}{{$x = printf "%s%s" $x $x}}{{end}}'
    for template in (repeat, doubling):
        with pytest.raises(ExecError, match="function results longer than 4194304 characters"):
            render(template, None)


def test_python_errors_of_a_function_are_execution_errors() -> None:
    """What Python refuses inside a built-in is the template's error, never a ValueError of its caller,
    and its safe form quotes no value."""
    template = parse('{{number "secret"}}', {"number": int})
    with pytest.raises(ExecError, match="error calling number: invalid literal") as raised:
        template.execute(None)
    assert raised.value.detail == "error calling number: bad argument"


def test_widths_precisions_and_runes_as_gos_fmt() -> None:
    """Go's parsenum gives up past 1e6 and reads the rest as no verb (no gigabyte of padding); an invalid
    rune prints U+FFFD."""
    assert sprintf("%999999999d", [1]) == "%!(NOVERB)%!(EXTRA int=1)"
    assert sprintf("a%.99999999999f|", [1.5]) == "a%!(NOVERB)%!(EXTRA float64=1.5)"
    assert sprintf("%" + "9" * 5000 + "d", [1]) == "%!(NOVERB)%!(EXTRA int=1)"
    assert len(sprintf("%1000000d", [1])) == 1000000
    assert sprintf("%c|%c|%c|%q", [-1, 0xD800, 0x110000, -5]) == "\ufffd|\ufffd|\ufffd|'\ufffd'"
    assert sprintf("%c%q", [65, 0x1F600]) == "A'\U0001f600'"


def test_go_strings_and_verbs() -> None:
    assert go_unquote('"a\\tb\\\\\\"\\U0001F600"') == 'a\tb\\"\U0001f600'
    assert go_unquote("`raw \\n`") == "raw \\n"
    for bad in ('"\\q"', '"a', '"\\400"', '"\\ud800"'):
        with pytest.raises(ValueError):
            go_unquote(bad)
    assert sprintf("%-6s|%6.2f|%06d|%x|%T|%T|%v", ["ab", 2.5, -42, -255, "s", [1], None]) == (
        "ab    |  2.50|-00042|-ff|string|[]interface {}|<nil>"
    )


class _Row(dict[str, Any]):
    """A row with docker/cli's ``Label(name string) string`` method."""

    def __init__(self, labels: dict[str, str], **fields: Any) -> None:
        super().__init__(**fields)
        self.go_methods = {"Label": Method("Label", ("string",), lambda name: labels.get(name, ""))}


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ('{{.Label "env"}}', "prod"),
        ('{{.Label "nope"}}|', "|"),  # docker/cli: an absent label is ""
        ('{{"env" | .Label}}', "prod"),  # the piped value is the last argument, as a function's
        ('{{$.Label "env"}} {{(.).Label "env"}}', "prod prod"),  # a variable's or a chain's method
        ('{{printf "%s=%s" .Name (.Label "env")}}', "web=prod"),
        ('{{if eq (.Label "env") "prod"}}yes{{end}}', "yes"),
        ('{{with $l := .Label "env"}}{{$l}}{{end}}', "prod"),
    ],
)
def test_methods_take_arguments_as_gos(template: str, expected: str) -> None:
    """Go's text/template calls a field chain's last name as a method with the command's arguments
    (docker/cli's ``{{.Label "com.example.k"}}``)."""
    assert parse(template).execute(_Row({"env": "prod"}, Name="web")) == expected


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{{.Label}}", "wrong number of args for Label: want 1 got 0"),
        ('{{.Label "a" "b"}}', "wrong number of args for Label: want 1 got 2"),
        ("{{printf `%s` .Label}}", "wrong number of args for Label: want 1 got 0"),
        ("{{.Label 1}}", "wrong type for value; expected string; got int"),
        ('{{.Name "x"}}', "Name is not a method but has arguments"),
    ],
)
def test_method_errors_are_gos(template: str, message: str) -> None:
    with pytest.raises(ExecError) as raised:
        parse(template).execute(_Row({}, Name="web"))
    assert raised.value.detail == message
