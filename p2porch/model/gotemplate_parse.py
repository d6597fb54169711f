"""The lexer and parser of Go's text/template language (pure): text into a tree of nodes.

Owns the syntax: text and actions (``{{ }}``, trim markers ``{{- ``/`` -}}``, comments), pipelines with
``|``, parentheses, fields and chains (``.A.B``, ``$x.A``, ``(...).A``), variables (``$x :=``, ``$x =``),
constants, ``if``/``else if``/``else``/``end``, ``range`` (``break``, ``continue``), ``with``/``else with``.
A parse error is Go's text (``template: :1: unexpected {{end}}``). Nesting is capped (no unbounded
recursion). Never evaluates anything (gotemplate_exec.py does).
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from .gotemplate_error import ParseError
from .gotemplate_values import go_unquote

MAX_DEPTH = 100  # nested control structures and parentheses
_SPACE = " \t\r\n"
_KEYWORDS = {"if", "else", "end", "range", "with", "break", "continue", "define", "template", "block"}
#: Go's built-in functions (gotemplate_exec.py has them)
BUILTINS = frozenset(
    {"and", "or", "not", "len", "index", "slice", "print", "printf", "println", "html", "js", "urlquery"}
    | {"eq", "ne", "lt", "le", "gt", "ge"}
)


@dataclass(slots=True)
class Node:
    pos: int  # offset in the template's text (Go's errors give its line and column)
    text: str = ""  # how Go prints the node in an error (``.Spec.Name``, ``index .A 1``)


@dataclass(slots=True)
class Text(Node):
    pass


@dataclass(slots=True)
class Field(Node):
    names: tuple[str, ...] = ()  # .A.B: on dot


@dataclass(slots=True)
class Variable(Node):
    name: str = ""  # "$" or "$x"
    names: tuple[str, ...] = ()  # $x.A.B


@dataclass(slots=True)
class Chain(Node):
    node: Node | None = None  # (pipeline).A.B
    names: tuple[str, ...] = ()


@dataclass(slots=True)
class Dot(Node):
    pass


@dataclass(slots=True)
class Ident(Node):
    name: str = ""  # a function


@dataclass(slots=True)
class Const(Node):
    value: Any = None  # a string, number, bool or nil


@dataclass(slots=True)
class Command(Node):
    args: list[Node] = field(default_factory=list)


@dataclass(slots=True)
class Pipe(Node):
    decl: tuple[str, ...] = ()
    assign: bool = False  # $x = ... (not :=)
    cmds: list[Command] = field(default_factory=list)


@dataclass(slots=True)
class Action(Node):
    pipe: Pipe | None = None


@dataclass(slots=True)
class Branch(Node):
    kind: str = ""  # if, range, with
    pipe: Pipe | None = None
    body: list[Node] = field(default_factory=list)
    other: list[Node] = field(default_factory=list)  # the else branch


@dataclass(slots=True)
class Loop(Node):
    kind: str = ""  # break, continue


_TOKEN_RE = re.compile(
    r"""(?P<space>[ \t\r\n]+)
    |(?P<string>"(?:[^"\\\n]|\\.)*")|(?P<raw>`[^`]*`)|(?P<char>'(?:[^'\\\n]|\\[^\n]+?)')
    |(?P<declare>:=)|(?P<punct>[|()=,])
    |(?P<number>[+-]?(?:0[xX][0-9a-fA-F_]+|0[bB][01_]+|0[oO][0-7_]+|(?:\d[\d_]*\.?\d*|\.\d+)(?:[eE][+-]?\d+)?))
    |(?P<field>\.[A-Za-z_][A-Za-z0-9_]*)|(?P<dot>\.)
    |(?P<var>\$[A-Za-z0-9_]*)|(?P<ident>[A-Za-z_][A-Za-z0-9_]*)""",
    re.VERBOSE,
)


_CLOSE_RE = re.compile(r"(?:[ \t\r\n]+-)?}}")
_TRIMMED_CLOSE_RE = re.compile(r"[ \t\r\n]+-}}")


@dataclass(slots=True)
class _Token:
    kind: str
    value: str
    pos: int
    spaced: bool  # whitespace before it (``.A .B`` are two arguments, ``.A.B`` one chain)


@dataclass(slots=True)
class _Item:
    pos: int
    text: str = ""  # a text item's text
    tokens: list[_Token] | None = None  # an action's tokens (None: text or a comment)
    comment: bool = False


class _Parser:
    def __init__(self, text: str, name: str, funcs: Collection[str]) -> None:
        self.text, self.name, self.funcs = text, name, funcs
        self.items = self._scan()
        self.at = 0
        self.vars: list[str] = ["$"]
        self.depth = 0
        self.open: list[str] = []  # the control structures around the action being parsed

    def fail(self, pos: int, detail: str) -> ParseError:
        line = self.text.count("\n", 0, pos) + 1
        return ParseError(f"template: {self.name}:{line}: {detail}", detail, line)

    # -- the scanner: text and actions, trims and comments -------------------------------------------
    def _scan(self) -> list[_Item]:
        items: list[_Item] = []
        text, pos, trim_next = self.text, 0, False
        while (start := text.find("{{", pos)) >= 0:
            chunk = text[pos:start]
            left = text.startswith("-", start + 2) and text[start + 3 : start + 4] in tuple(_SPACE)
            chunk = chunk.lstrip(_SPACE) if trim_next else chunk
            chunk = chunk.rstrip(_SPACE) if left else chunk
            if chunk:
                items.append(_Item(pos, chunk))
            body = start + (4 if left else 2)
            if text.startswith("/*", body):
                close = text.find("*/", body + 2)
                if close < 0:
                    raise self.fail(start, "unclosed comment")
                end, trim_next = self._close(close + 2, start, comment=True)
                items.append(_Item(start, comment=True))
            else:
                tokens, end, trim_next = self._tokens(body, start)
                items.append(_Item(start, tokens=tokens))
            pos = end
        rest = text[pos:].lstrip(_SPACE) if trim_next else text[pos:]
        if rest:
            items.append(_Item(pos, rest))
        return items

    def _close(self, i: int, start: int, comment: bool = False) -> tuple[int, bool]:
        """Where the action closing at ``i`` ends and whether it trims (`` -}}``)."""
        if self.text.startswith("}}", i):
            return i + 2, False
        trimmed = _TRIMMED_CLOSE_RE.match(self.text, i)
        if trimmed:
            return trimmed.end(), True
        raise self.fail(start, "comment ends before closing delimiter" if comment else "unclosed action")

    def _tokens(self, i: int, start: int) -> tuple[list[_Token], int, bool]:
        tokens: list[_Token] = []
        spaced = True
        if self.text.find("}}", i) < 0:
            raise self.fail(start, "unclosed action")
        while True:
            if i >= len(self.text):
                raise self.fail(start, "unclosed action")
            closing = _CLOSE_RE.match(self.text, i)
            if closing is not None:
                return tokens, closing.end(), closing.group(0).startswith(tuple(_SPACE))
            match = _TOKEN_RE.match(self.text, i)
            if match is None or match.lastgroup is None:
                char = self.text[i]
                if char in "\"`'":
                    what = {'"': "quoted string", "`": "raw quoted string", "'": "character constant"}[char]
                    raise self.fail(i, f"unterminated {what}")
                raise self.fail(i, f"unrecognized character in action: U+{ord(char):04X} {char!r}")
            kind = match.lastgroup
            if kind == "space":
                spaced = True
            else:
                tokens.append(_Token(kind, match.group(0), i, spaced))
                spaced = False
            i = match.end()

    # -- the parser ---------------------------------------------------------------------------------
    def parse(self) -> list[Node]:
        nodes, stop = self._list()
        if stop is not None:
            raise self.fail(stop.pos, f"unexpected {{{{{stop.tokens[0].value if stop.tokens else ''}}}}}")
        return nodes

    def _list(self) -> tuple[list[Node], _Item | None]:
        """Nodes up to an ``{{end}}``/``{{else}}`` (returned, not consumed past) or the end."""
        nodes: list[Node] = []
        while self.at < len(self.items):
            item = self.items[self.at]
            self.at += 1
            if item.comment:
                continue
            if item.tokens is None:
                nodes.append(Text(item.pos, item.text))
            elif not item.tokens:
                raise self.fail(item.pos, "missing value for command")
            elif item.tokens[0].kind == "ident" and item.tokens[0].value in ("end", "else"):
                return nodes, item
            else:
                nodes.append(self._action(item))
        return nodes, None

    def _action(self, item: _Item) -> Node:
        tokens = item.tokens or []
        first = tokens[0]
        if first.kind == "ident" and first.value in ("if", "range", "with"):
            return self._branch(first.value, item, tokens[1:])
        if first.kind == "ident" and first.value in ("break", "continue"):
            if len(tokens) > 1:
                raise self.fail(first.pos, f"unexpected {_describe(tokens[1])} in {first.value}")
            if "range" not in self.open:
                raise self.fail(first.pos, f"{{{{{first.value}}}}} outside {{{{range}}}}")
            return Loop(first.pos, first.value, first.value)
        if first.kind == "ident" and first.value in ("define", "template", "block"):
            raise self.fail(first.pos, f"{{{{{first.value}}}}} is not supported here")
        pipe = self._pipe(tokens, item.pos, "command")
        return Action(item.pos, pipe.text, pipe)

    def _branch(self, kind: str, item: _Item, tokens: list[_Token]) -> Node:
        """``{{if|range|with pipeline}} body [{{else [if|with ...]}} other] {{end}}``."""
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.fail(item.pos, f"nesting deeper than {MAX_DEPTH}")
        scope = len(self.vars)
        pipe = self._pipe(tokens, item.pos, kind)
        self.open.append(kind)
        body, stop = self._list()
        self.open.pop()
        other: list[Node] = []
        if stop is None:
            raise self.fail(len(self.text), "unexpected EOF")
        words = stop.tokens or []
        if words[0].value == "else" and len(words) > 1 and words[1].value in ("if", "with"):
            other = [self._branch(words[1].value, stop, words[2:])]  # it takes the {{end}}
        elif words[0].value == "else":
            if len(words) > 1:
                raise self.fail(stop.pos, f"unexpected {_describe(words[1])} in else")
            other, stop = self._list()
            if stop is None:
                raise self.fail(len(self.text), "unexpected EOF")
            words = stop.tokens or []
            if words[0].value != "end":
                raise self.fail(stop.pos, "expected end; found {{else}}")
        if words[0].value == "end" and len(words) > 1:
            raise self.fail(stop.pos, f"unexpected {_describe(words[1])} in end")
        self.depth -= 1
        del self.vars[scope:]
        return Branch(item.pos, f"{{{{{kind} {pipe.text}}}}}", kind, pipe, body, other)

    def _pipe(self, tokens: list[_Token], pos: int, context: str) -> Pipe:
        """``[$x :=|$x =|$i, $v :=] command [| command]...``."""
        decl: tuple[str, ...] = ()
        assign = False
        shape = [t.kind if t.kind in ("var", "declare") else t.value for t in tokens[:4]]
        if shape[:2] in (["var", "declare"], ["var", "="]) or shape == ["var", ",", "var", "declare"]:
            cut = 1 if shape[1] != "," else 3
            if cut == 3 and context != "range":
                raise self.fail(tokens[1].pos, f"too many declarations in {context}")
            decl, assign = tuple(t.value for t in tokens[:cut:2]), tokens[cut].value == "="
            tokens = tokens[cut + 1 :]
        start = tokens[0].pos if tokens else pos
        cmds: list[Command] = []
        rest = tokens
        while True:
            cut = _pipe_cut(rest)
            if cut == 0:
                raise self.fail(pos, f"missing value for {context}")
            cmds.append(self._command(rest[:cut], context))
            if cut == len(rest):
                break
            rest = rest[cut + 1 :]
        for name in decl:
            if assign:
                self._var(name, pos)
            else:
                self.vars.append(name)
        text = " | ".join(c.text for c in cmds)
        if decl:
            text = f"{', '.join(decl)} {'=' if assign else ':='} {text}"
        return Pipe(start, text, decl, assign, cmds)

    def _command(self, tokens: list[_Token], context: str) -> Command:
        args: list[Node] = []
        i = 0
        while i < len(tokens):
            node, i = self._operand(tokens, i, context)
            args.append(node)
        return Command(tokens[0].pos, " ".join(a.text for a in args), args)

    def _operand(self, tokens: list[_Token], i: int, context: str) -> tuple[Node, int]:
        token = tokens[i]
        node: Node
        if token.kind == "punct" and token.value == "(":
            depth, j = 0, i
            for j in range(i, len(tokens)):
                if tokens[j].kind == "punct" and tokens[j].value in "()":
                    depth += 1 if tokens[j].value == "(" else -1
                    if depth == 0:
                        break
            if depth != 0:
                raise self.fail(token.pos, "unclosed left paren")
            self.depth += 1
            if self.depth > MAX_DEPTH:
                raise self.fail(token.pos, f"nesting deeper than {MAX_DEPTH}")
            inner = self._pipe(tokens[i + 1 : j], token.pos, "parenthesized pipeline")
            self.depth -= 1
            node, i = Chain(token.pos, f"({inner.text})", inner), j + 1
        elif token.kind == "field":
            node, i = Field(token.pos, token.value, (token.value[1:],)), i + 1
        elif token.kind == "var":
            self._var(token.value, token.pos)
            node, i = Variable(token.pos, token.value, token.value), i + 1
        elif token.kind == "dot":
            node, i = Dot(token.pos, "."), i + 1
        elif token.kind == "ident":
            node, i = self._ident(token), i + 1
        elif token.kind in ("string", "raw", "char", "number"):
            node, i = Const(token.pos, token.value, self._constant(token)), i + 1
        else:
            raise self.fail(token.pos, f"unexpected {_describe(token)} in {context}")
        names: list[str] = []
        while i < len(tokens) and tokens[i].kind == "field" and not tokens[i].spaced:
            names.append(tokens[i].value[1:])
            i += 1
        if names:
            if isinstance(node, Const | Ident | Dot):
                raise self.fail(token.pos, f"unexpected . after term {_describe(token)}")
            suffix = "".join("." + n for n in names)
            if isinstance(node, Field):
                node = Field(node.pos, node.text + suffix, node.names + tuple(names))
            elif isinstance(node, Variable):
                node = Variable(node.pos, node.text + suffix, node.name, tuple(names))
            else:
                assert isinstance(node, Chain)
                node = Chain(node.pos, node.text + suffix, node.node, tuple(names))
        return node, i

    def _ident(self, token: _Token) -> Node:
        word = token.value
        if word in ("true", "false"):
            return Const(token.pos, word, word == "true")
        if word == "nil":
            return Const(token.pos, word, None)
        if word in _KEYWORDS:
            raise self.fail(token.pos, f"unexpected <{word}> in command")
        if word not in BUILTINS and word not in self.funcs:
            raise self.fail(token.pos, f'function "{word}" not defined')
        return Ident(token.pos, word, word)

    def _var(self, name: str, pos: int) -> None:
        if name not in self.vars:
            raise self.fail(pos, f'undefined variable "{name}"')

    def _constant(self, token: _Token) -> Any:
        text = token.value
        try:
            if token.kind in ("string", "raw"):
                return go_unquote(text)
            if token.kind == "char":
                value = go_unquote('"' + text[1:-1].replace('"', '\\"').replace("\\'", "'") + '"')
                if len(value) != 1:
                    raise ValueError(text)
                return ord(value)
            digits = text.replace("_", "")
            if re.fullmatch(r"[+-]?0[xXbBoO].*", digits):
                return _int64(int(digits, 0))
            if re.fullmatch(r"[+-]?\d+", digits):
                return _int64(int(digits))
            return _finite(float(digits))
        except ValueError:
            what = "string constant" if token.kind in ("string", "raw") else "number syntax"
            raise self.fail(token.pos, f"malformed {what}") from None


def _int64(number: int) -> int:
    """An integer constant as Go's parser takes it: one that fits an int64 or a uint64 (a larger one
    would be a Python number of any size, which ``str`` refuses past 4300 digits)."""
    if not -(2**63) <= number < 2**64:
        raise ValueError("integer overflow")
    return number


def _finite(number: float) -> float:
    """A float constant as Go's ``strconv.ParseFloat`` takes it: out of range (``1e999``) is an error."""
    if math.isinf(number):
        raise ValueError("out of range")
    return number


def _pipe_cut(tokens: list[_Token]) -> int:
    """Where the first command of ``tokens`` ends: its ``|`` outside parentheses, or the end."""
    depth = 0
    for i, token in enumerate(tokens):
        if token.kind == "punct":
            depth += {"(": 1, ")": -1}.get(token.value, 0)
            if token.value == "|" and depth == 0:
                return i
    return len(tokens)


def _describe(token: _Token) -> str:
    """A token in a parse error: a constant by its kind only (a payload's template may be a secret)."""
    if token.kind in ("string", "raw", "char", "number"):
        return f"<{token.kind} constant>"
    return repr(token.value)


def parse_text(text: str, name: str = "", funcs: Collection[str] = ()) -> list[Node]:
    """``text``'s tree; ParseError as Go's (``funcs``: the names of the caller's functions)."""
    return _Parser(text, name, funcs).parse()


def locate(text: str, pos: int) -> tuple[int, int]:
    """Go's line and column of the byte at ``pos`` (the column counts from 0 after the line's start)."""
    line_start = text.rfind("\n", 0, pos) + 1
    return text.count("\n", 0, pos) + 1, pos - line_start
