"""Fuzzing the Go template engine (seeded hypothesis): whatever the text and the data, parsing and
executing raise only TemplateError (ParseError/ExecError), within the output and step caps. Templates
are built from the language's own pieces so that most of them parse and run, not just fail to lex."""

from __future__ import annotations

from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from p2porch.model.gotemplate import MISSING, TemplateError, parse

MAX_OUTPUT = 100_000
WORDS = [
    "{{", "}}", "{{-", "-}}", " ", ".", ".Name", ".Labels", ".Items", "$", "$x", ":=", "=", "|", "(", ")",
    "if", "else", "end", "range", "with", "break", "continue", "len", "index", "slice", "printf", "print",
    "println", "eq", "ne", "lt", "le", "gt", "ge", "and", "or", "not", "html", "js", "urlquery", "call",
    "nil", "true", "false", "0", "-1", "1e308", "1e999", "0x" + "f" * 40, "0x" + "f" * 5000, "9" * 30,
    "'a'", "'\\u00e9'",
    '"%v"', '"%999999d"', '"%*d"', '"%.*f"', '"%-5.2s"', '"%q"', '"%x"', '"%c"', '"%U"', '"%[2]v"', '"\\x00"',
    "`raw`", "/* c */", "template", "define", "block", "{{range 1000}}", "{{range $i, $e := .Items}}",
]  # fmt: skip
DATA = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(), st.text(max_size=8)),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=5), inner, max_size=4)
    ),
    max_leaves=12,
)


INNER = [w for w in WORDS if "{" not in w and "}" not in w]
ACTIONS = st.lists(st.sampled_from(INNER), min_size=1, max_size=4).map(lambda ws: "{{" + " ".join(ws) + "}}")
TEMPLATES = st.lists(st.one_of(ACTIONS, st.sampled_from(WORDS)), max_size=12).map("".join)


def run(text: str, data: object) -> None:
    try:
        out = parse(text, name="fuzz").execute(data, max_output=MAX_OUTPUT)
    except TemplateError:
        return
    assert len(out) <= MAX_OUTPUT


@seed(46)
@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(TEMPLATES, DATA)
def test_templates_of_the_languages_pieces_raise_only_template_errors(text, data):
    run(text, {"Name": "web", "Labels": {"a": "b"}, "Items": [1, "x", None], "Data": data})
    run(text, data)


@seed(46)
@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_random_text_raises_only_template_errors(text):
    run(text, {"Name": MISSING})
