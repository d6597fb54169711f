"""The Compose YAML loader: PyYAML's SafeLoader with Compose's scalars, tags and limits (pure).

Imported by ``yamlsafe`` on the first parse only (PyYAML is ~1 MB of an idle daemon's memory). It
never does I/O and never raises anything but ``ConfigError`` for any input text.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from ..errors import ConfigError
from .yamltags import MAX_ALIASES, MAX_DEPTH, MAX_EXPANDED_NODES, RESET, Override, Reset


class _LimitError(yaml.YAMLError):
    def __init__(self, message: str, mark: Any) -> None:
        super().__init__(message)
        self.message = message
        self.mark = mark


class _ComposeLoader(yaml.SafeLoader):
    """SafeLoader with Compose's scalars, libyaml's tabs, duplicate-key errors, override tags and limits."""

    buffer: str  # PyYAML's Reader: the text read so far, which peek() reads at ``pointer``

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._aliases = 0
        self._open_anchors: set[str] = set()
        self._anchor_sizes: dict[str, int] = {}
        self._anchor_heights: dict[str, int] = {}
        self._sizes: list[int] = [0]
        self._heights: list[int] = [0]  # the tallest child seen so far, per open node

    def _add(self, size: int, height: int, mark: Any) -> None:
        """Account a child of ``size`` values and ``height`` levels (aliases count what they expand to)."""
        if self._depth + height > MAX_DEPTH:
            raise _LimitError(f"nested deeper than {MAX_DEPTH} levels (aliases included)", mark)
        self._heights[-1] = max(self._heights[-1], height)
        self._sizes[-1] += size
        if self._sizes[-1] > MAX_EXPANDED_NODES:
            raise _LimitError(
                f"the document expands to more than {MAX_EXPANDED_NODES} values (alias expansion)", mark
            )

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            anchor = event.anchor
            if anchor in self._open_anchors:
                raise _LimitError(
                    f"recursive alias *{anchor} (it refers to a value that contains it)", event.start_mark
                )
            self._aliases += 1
            if self._aliases > MAX_ALIASES:
                raise _LimitError(f"more than {MAX_ALIASES} aliases", event.start_mark)
            key = anchor or ""
            self._add(self._anchor_sizes.get(key, 1), self._anchor_heights.get(key, 1), event.start_mark)
            return super().compose_node(parent, index)
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise _LimitError(f"nested deeper than {MAX_DEPTH} levels", event.start_mark)
        anchor = getattr(event, "anchor", None)
        if anchor:
            self._open_anchors.add(anchor)
        self._sizes.append(0)
        self._heights.append(0)
        try:
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
            if anchor:
                self._open_anchors.discard(anchor)
            size = 1 + self._sizes.pop()
            height = 1 + self._heights.pop()
        if anchor:
            self._anchor_sizes[anchor] = size
            self._anchor_heights[anchor] = height
        self._add(size, height, event.start_mark)
        return node

    def scan_to_next_token(self) -> None:
        """libyaml's rule (go-yaml, so compose-go): a tab separates tokens in flow context and after a
        value (``image: nginx<TAB># pinned``), never where indentation or a key may start."""
        while True:
            while self.peek() == "\t" and (self.flow_level or not self.allow_simple_key):
                self.forward()
            super().scan_to_next_token()
            if self.peek() != "\t" or not (self.flow_level or not self.allow_simple_key):
                return

    def scan_plain_spaces(self, indent: int, start_mark: Any) -> Any:
        """PyYAML's own, but tabs within a line are blanks of a plain scalar, as in libyaml: a tab
        before a comment (``True<TAB># debug``) ends the value, one between words stays in it."""
        length = 0
        while self.peek(length) in " \t":
            length += 1
        if "\t" not in self.prefix(length):
            return super().scan_plain_spaces(indent, start_mark)
        whitespaces = self.prefix(length)
        self.forward(length)
        if self.peek() in "\r\n\x85\u2028\u2029":
            return super().scan_plain_spaces(indent, start_mark)  # the line break, as PyYAML reads it
        return [whitespaces]

    def scan_block_scalar_indicators(self, start_mark: Any) -> Any:
        """``run: |<TAB># comment``: libyaml takes tabs after a block scalar's header as blanks."""
        length = 0
        while length < 2 and self.peek(length) in "+-0123456789":
            length += 1
        self._tabs_as_spaces(length)
        return super().scan_block_scalar_indicators(start_mark)

    def _tabs_as_spaces(self, offset: int) -> None:
        """The blanks from ``offset`` on, read as spaces where PyYAML only takes spaces (same length, so
        every mark stays where it was)."""
        end = offset
        while self.peek(end) in " \t":
            end += 1
        start, stop = self.pointer + offset, self.pointer + end
        if "\t" in self.buffer[start:stop]:
            self.buffer = self.buffer[:start] + " " * (stop - start) + self.buffer[stop:]

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
                if key_node.value in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key {key_node.value!r}", key_node.start_mark
                    )
                seen.add(key_node.value)
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise yaml.constructor.ConstructorError(
                    None, None, "a key must be a plain value (not a list or mapping)", key_node.start_mark
                )
        return super().construct_mapping(node, deep=deep)


def _construct_reset(loader: _ComposeLoader, node: yaml.Node) -> Reset:
    return RESET


def _construct_override(loader: _ComposeLoader, node: yaml.Node) -> Override:
    if isinstance(node, yaml.MappingNode):
        return Override(loader.construct_mapping(node, deep=True))
    if isinstance(node, yaml.SequenceNode):
        return Override(loader.construct_sequence(node, deep=True))
    return Override(loader.construct_scalar(node))


_ComposeLoader.add_constructor("!reset", _construct_reset)
_ComposeLoader.add_constructor("!override", _construct_override)
_ComposeLoader.yaml_implicit_resolvers = {
    first: [
        (tag, regexp)
        for tag, regexp in resolvers
        if tag
        not in (
            "tag:yaml.org,2002:bool",
            "tag:yaml.org,2002:int",
            "tag:yaml.org,2002:float",
            "tag:yaml.org,2002:timestamp",
        )
    ]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_ComposeLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
# go-yaml (v3, and compose-go's v4) resolves a plain scalar that starts with a digit or a sign by first
# dropping every ``_`` (``1_000`` is 1000), then Go's ``ParseInt(s, 0)``: a leading zero is octal as in
# YAML 1.1 (``0123`` is 83, so ``PIN: 0123`` is "83" in compose-go's environment), ``0x``/``0o``/``0b``
# in either case and after a sign; then a float of YAML's form, so one with an 8 or 9 after a leading zero
# is no integer but a float (``0189`` is 189.0, written "189"). A scalar that starts with ``.`` or ``_``
# keeps its underscores (``_100`` is text).
_GO_INT = re.compile(r"^[-+]?(?:0|[1-9][0-9]*|0[0-7]+|0[xX][0-9a-fA-F]+|0[oO][0-7]+|0[bB][01]+)$")
_GO_FLOAT = re.compile(r"^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?$")
_SPECIAL_FLOAT = re.compile(r"^(?:[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$")


class _GoNumber:
    """A resolver's ``match`` for go-yaml's numbers: ``pattern`` tried on the scalar without its ``_``
    (the integer resolver is added first, so a float's pattern only sees what is no integer)."""

    def __init__(self, pattern: re.Pattern[str], special: re.Pattern[str] | None = None) -> None:
        self.pattern = pattern
        self.special = special

    def match(self, value: str) -> bool:
        if self.special is not None and self.special.match(value):
            return True
        plain = value if value.startswith(".") else value.replace("_", "")
        return self.pattern.match(plain) is not None


def _construct_go_int(loader: _ComposeLoader, node: yaml.ScalarNode) -> int:
    """Go's ``ParseInt(s, 0)`` of the scalar without its ``_``."""
    plain = str(loader.construct_scalar(node)).replace("_", "")
    sign = -1 if plain.startswith("-") else 1
    digits = plain.lstrip("+-")
    if len(digits) > 2 and digits[0] == "0" and digits[1] in "xXoObB":
        return sign * int(digits[2:], {"x": 16, "o": 8, "b": 2}[digits[1].lower()])
    if len(digits) > 1 and digits[0] == "0":
        return sign * int(digits, 8)
    return sign * int(digits)


_ComposeLoader.add_constructor("tag:yaml.org,2002:int", _construct_go_int)
_ComposeLoader.add_implicit_resolver("tag:yaml.org,2002:int", _GoNumber(_GO_INT), list("-+0123456789"))
_ComposeLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float", _GoNumber(_GO_FLOAT, _SPECIAL_FLOAT), list("-+0123456789.")
)


def _where(mark: Any, filename: str) -> str:
    line = f" line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return f"{filename}{line}"


def load(text: str, filename: str, multi: bool) -> Any:
    """One document, or every document of the stream when ``multi``; ConfigError for any failure."""
    loader: _ComposeLoader | None = None
    try:
        loader = _ComposeLoader(text)
        if not multi:
            return loader.get_single_data()
        docs = []
        while loader.check_data():
            docs.append(loader.get_data())
        return docs
    except _LimitError as exc:
        raise ConfigError(f"compose: {_where(exc.mark, filename)}: {exc.message}", field="compose") from None
    except yaml.MarkedYAMLError as exc:
        problem = exc.problem or exc.context or "invalid YAML"
        raise ConfigError(
            f"compose: {_where(exc.problem_mark, filename)}: invalid YAML: {problem}", field="compose"
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"compose: {filename}: invalid YAML: {exc}", field="compose") from None
    except (RecursionError, ValueError, OverflowError, TypeError) as exc:  # a constructor given odd input
        raise ConfigError(f"compose: {filename}: invalid YAML: {exc}", field="compose") from None
    finally:
        if loader is not None:
            loader.dispose()
