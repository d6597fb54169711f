"""Go's text/template language, as Docker users and Swarm's templates use it (pure): parse once, execute
many times.

``parse(text, funcs)`` gives a :class:`Template` (ParseError as Go words it); ``Template.execute(data)``
prints it over ``data`` (ExecError as Go words it). The language: gotemplate_parse.py; values and
printing: gotemplate_values.py; Go's JSON: gotemplate_json.py; execution and the built-ins:
gotemplate_exec.py. The callers add their own functions (the CLI's ``json``/``join``/..., a payload's
``env``/``secret``/``config``) and may read fields their own way (``resolve``); a value may offer
methods (:class:`Method`: ``{{.Label "k"}}``). Never does I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from .gotemplate_error import ExecError, ParseError, TemplateError
from .gotemplate_exec import MAX_OUTPUT, Execution, Resolve, field_chain, field_of, strict_chain
from .gotemplate_json import go_json
from .gotemplate_parse import Node, parse_text
from .gotemplate_values import (
    MISSING,
    FuncError,
    GoList,
    GoMap,
    Method,
    NilPointer,
    Struct,
    go_quote,
    go_text,
    go_type,
    go_unquote,
    method_of,
    sprintf,
    truth,
)

__all__ = [
    "MISSING",
    "ExecError",
    "FuncError",
    "GoList",
    "GoMap",
    "Method",
    "NilPointer",
    "ParseError",
    "Resolve",
    "Struct",
    "Template",
    "TemplateError",
    "field_chain",
    "field_of",
    "go_json",
    "go_quote",
    "go_text",
    "go_type",
    "go_unquote",
    "method_of",
    "parse",
    "sprintf",
    "strict_chain",
    "truth",
]


class Template:
    """A parsed template and the functions it may call; executing it never changes it."""

    def __init__(self, text: str, nodes: list[Node], funcs: Mapping[str, Callable[..., Any]], name: str):
        self.text, self.nodes, self.funcs, self.name = text, nodes, dict(funcs), name

    def execute(
        self, data: Any, resolve: Resolve | None = None, max_output: int = MAX_OUTPUT, partial: bool = False
    ) -> str:
        """The template printed over ``data``; ``resolve`` reads a field chain (default: a map's keys and
        a struct's fields, as Go's). ExecError as Go's; the output is capped at ``max_output``. With
        ``partial`` an execution error is no error: what was printed before it is the result (Go's
        ``Execute`` into a buffer whose error is ignored, as docker/cli prints a table's header)."""
        run = Execution(self.text, self.name, data, self.funcs, resolve, max_output)
        try:
            run.run(self.nodes, data)
        except ExecError:
            if not partial:
                raise
        return "".join(run.out)


def parse(text: str, funcs: Mapping[str, Callable[..., Any]] | None = None, name: str = "") -> Template:
    """``text`` parsed with the caller's ``funcs`` beside Go's built-ins (ParseError as Go's)."""
    funcs = funcs or {}
    return Template(text, parse_text(text, name, funcs), funcs, name)


def render(text: str, data: Any, funcs: Mapping[str, Callable[..., Any]] | None = None) -> str:
    """``parse(text, funcs).execute(data)``."""
    return parse(text, funcs).execute(data)
