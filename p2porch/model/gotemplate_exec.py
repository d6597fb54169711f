"""The executor of a parsed Go text/template and its built-in functions (pure).

Owns evaluation: dot and ``$``, variables and their scopes, fields (a map's key, a struct's field, or the
caller's ``resolve``), methods with arguments (``{{.Label "k"}}``, Go's rules), pipelines,
``if``/``range``/``with``, the built-ins (``and or not len index slice print printf println eq ne lt le
gt ge html js urlquery``) and the caller's functions. An error is Go's (``template: :1:2: executing ""
at <.Foo>: ...``). Work is bounded: a range walks its value once, the output and the number of steps are
capped, so no template runs away. Never parses (gotemplate_parse.py).
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable, Mapping
from typing import Any

from .gotemplate_error import ExecError, TemplateError
from .gotemplate_parse import (
    Action,
    Branch,
    Chain,
    Command,
    Const,
    Dot,
    Field,
    Ident,
    Loop,
    Node,
    Pipe,
    Text,
    Variable,
    locate,
)
from .gotemplate_values import (
    MISSING,
    FuncError,
    Method,
    NilPointer,
    Struct,
    go_text,
    go_type,
    html_escape,
    is_struct,
    js_escape,
    method_of,
    sprintf,
    truth,
)

#: ``resolve(receiver, names)``: the value of the field chain ``names`` on ``receiver`` (FuncError: Go's
#: "can't evaluate field" text); the default is :func:`field_chain`
Resolve = Callable[[Any, tuple[str, ...]], Any]

MAX_OUTPUT = 4 * 1024 * 1024  # characters one execution may print
MAX_STEPS = 1_000_000  # nodes and range iterations one execution may evaluate
#: what one execution's function results may hold in all, in multiples of its output cap: a result is
#: built before it is written (``printf "%s%s" $x $x`` in a range doubles a string, or repeats a
#: megabyte), so results are bounded on their own, in memory and in time
RESULTS_PER_OUTPUT = 4


_NONE: Any = object()  # no value piped in yet


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


def field_of(receiver: Any, name: str, strict: bool = False) -> Any:
    """Go's ``.name`` on one value: a map's key (absent: :data:`MISSING`, or with ``strict`` an error as
    Go's ``missingkey=error``), a struct's field."""
    if receiver is MISSING:
        return MISSING  # Go: a field of an absent value is absent too
    if isinstance(receiver, Method):  # a method in a chain (``.M.F``): called with no arguments
        receiver = receiver.invoke(())
    method = method_of(receiver, name)
    if method is not None:
        return method  # the executor calls it, with the command's arguments
    if isinstance(receiver, Struct):
        if name not in receiver:
            raise FuncError(f"can't evaluate field {name} in type {receiver.go_type}")
        return receiver[name]
    if isinstance(receiver, Mapping):
        if strict and name not in receiver:
            raise FuncError(f'map has no entry for key "{name}"')
        return receiver.get(name, MISSING)
    if is_struct(receiver) and name in getattr(receiver, "__dataclass_fields__", {}):
        return getattr(receiver, name)
    if receiver is None:
        raise FuncError(f"nil pointer evaluating interface {{}}.{name}")
    if isinstance(receiver, NilPointer):
        raise receiver.field_error(name)
    raise FuncError(f"can't evaluate field {name} in type {go_type(receiver)}")


def field_chain(receiver: Any, names: tuple[str, ...]) -> Any:
    """Go's ``.A.B`` on ``receiver`` (an absent key is ``<no value>``)."""
    for name in names:
        receiver = field_of(receiver, name)
    return receiver


def strict_chain(receiver: Any, names: tuple[str, ...]) -> Any:
    """As :func:`field_chain` with Go's ``missingkey=error`` (Swarm's templates)."""
    for name in names:
        receiver = field_of(receiver, name, strict=True)
    return receiver


class Execution:
    """One run of a template over ``data``: the output so far, the variables, the step budget."""

    def __init__(
        self,
        text: str,
        name: str,
        data: Any,
        funcs: Mapping[str, Callable[..., Any]],
        resolve: Resolve | None,
        max_output: int,
    ) -> None:
        self.text, self.name, self.funcs = text, name, funcs
        self.resolve = resolve or field_chain
        self.vars: list[list[Any]] = [["$", data]]
        self.out: list[str] = []
        self.size, self.max_output, self.steps = 0, max_output, 0
        self.made = 0  # characters and items the functions' results held, against RESULTS_PER_OUTPUT

    def fail(self, node: Node, detail: str, safe: str = "") -> ExecError:
        """Go's execution error at ``node``; ``safe``: ``detail`` without the values it quotes."""
        line, column = locate(self.text, node.pos)
        return ExecError(
            f'template: {self.name}:{line}:{column}: executing "{self.name}" at <{node.text}>: {detail}',
            safe or detail,
            line,
            column,
        )

    def _step(self, node: Node) -> None:
        self.steps += 1
        if self.steps > MAX_STEPS:
            raise self.fail(node, f"execution stopped after {MAX_STEPS} steps")

    def _write(self, node: Node, text: str) -> None:
        self.size += len(text)
        if self.size > self.max_output:
            raise self.fail(node, f"output longer than {self.max_output} characters")
        self.out.append(text)

    # -- statements ----------------------------------------------------------------------------------
    def run(self, nodes: list[Node], dot: Any) -> None:
        for node in nodes:
            self._step(node)
            if isinstance(node, Text):
                self._write(node, node.text)
            elif isinstance(node, Action):
                assert node.pipe is not None
                value = self.pipe(node.pipe, dot)
                if not node.pipe.decl:
                    self._write(node, go_text(value, top=True))
            elif isinstance(node, Branch):
                self._branch(node, dot)
            elif isinstance(node, Loop):
                raise _Break() if node.kind == "break" else _Continue()

    def _branch(self, node: Branch, dot: Any) -> None:
        scope = len(self.vars)
        try:
            assert node.pipe is not None
            if node.kind == "range":
                self._range(node, dot)
                return
            value = self.pipe(node.pipe, dot)
            if truth(value):
                self.run(node.body, value if node.kind == "with" else dot)
            else:
                self.run(node.other, dot)
        finally:
            del self.vars[scope:]

    def _range(self, node: Branch, dot: Any) -> None:
        assert node.pipe is not None
        decl = node.pipe.decl
        value = self.pipe(node.pipe, dot, declare=False)
        if isinstance(value, Mapping) and not isinstance(value, Struct):  # Go ranges over no struct
            pairs: Any = ((k, value[k]) for k in sorted(value))
        elif isinstance(value, list | tuple):
            pairs = enumerate(value)
        elif isinstance(value, int) and not isinstance(value, bool):
            pairs = ((i, i) for i in range(max(value, 0)))
        elif value is None or value is MISSING:
            pairs = iter(())
        else:
            raise self.fail(
                node.pipe,
                f"range can't iterate over {go_text(value)}",
                f"range can't iterate over a {go_type(value)}",
            )
        ran = False
        scope = len(self.vars)
        for key, item in pairs:
            ran = True
            self._step(node)
            del self.vars[scope:]
            if len(decl) == 1:
                self.vars.append([decl[0], item])
            elif len(decl) == 2:
                self.vars += [[decl[0], key], [decl[1], item]]
            try:
                self.run(node.body, item)
            except _Break:
                break
            except _Continue:
                continue
        del self.vars[scope:]
        if not ran:
            self.run(node.other, dot)

    # -- expressions ---------------------------------------------------------------------------------
    def pipe(self, pipe: Pipe, dot: Any, declare: bool = True) -> Any:
        value: Any = _NONE
        for cmd in pipe.cmds:
            value = self._command(cmd, dot, value)
        if declare and pipe.decl:
            if pipe.assign:
                self._variable(pipe, pipe.decl[0])[1] = value
            else:
                self.vars.append([pipe.decl[0], value])
        return value

    def _variable(self, node: Node, name: str) -> list[Any]:
        for slot in reversed(self.vars):
            if slot[0] == name:
                return slot
        raise self.fail(node, f"undefined variable: {name}")

    def _command(self, cmd: Command, dot: Any, final: Any) -> Any:
        first = cmd.args[0]
        if isinstance(first, Ident):
            return self._call(cmd, first.name, cmd.args[1:], dot, final)
        if isinstance(first, Field):  # a field chain's last name may be a method taking the arguments
            return self._fields(first, dot, first.names, cmd.args[1:], final, dot)
        if isinstance(first, Variable) and first.names:
            value = self._variable(first, first.name)[1]
            return self._fields(first, value, first.names, cmd.args[1:], final, dot)
        if isinstance(first, Chain) and first.names:
            assert isinstance(first.node, Pipe)
            value = self.pipe(first.node, dot, declare=False)
            return self._fields(first, value, first.names, cmd.args[1:], final, dot)
        if isinstance(first, Const) and first.value is None:
            raise self.fail(first, "nil is not a command")
        if len(cmd.args) > 1 or final is not _NONE:
            shown = "a constant" if isinstance(first, Const) else first.text  # a payload's may be secret
            raise self.fail(
                first,
                f"can't give argument to non-function {first.text}",
                f"can't give argument to non-function {shown}",
            )
        return self.arg(first, dot)

    def arg(self, node: Node, dot: Any) -> Any:
        if isinstance(node, Const):
            return node.value
        if isinstance(node, Dot):
            return dot
        if isinstance(node, Field):
            return self._fields(node, dot, node.names)
        if isinstance(node, Variable):
            value = self._variable(node, node.name)[1]
            return self._fields(node, value, node.names) if node.names else value
        if isinstance(node, Chain):
            assert isinstance(node.node, Pipe)
            value = self.pipe(node.node, dot, declare=False)
            return self._fields(node, value, node.names) if node.names else value
        if isinstance(node, Ident):
            return self._call(Command(node.pos, node.text, [node]), node.name, [], dot, _NONE)
        raise self.fail(node, "can't evaluate")  # pragma: no cover - the parser makes no other node

    def _fields(
        self,
        node: Node,
        receiver: Any,
        names: tuple[str, ...],
        args: list[Node] | None = None,
        final: Any = _NONE,
        dot: Any = None,
    ) -> Any:
        """The chain ``names`` on ``receiver``; a method at its end is called with ``args`` (and the
        piped ``final``), as Go's ``evalFieldChain``; a field or key given arguments is Go's error."""
        self._step(node)
        try:
            value = self.resolve(receiver, names)
        except FuncError as exc:
            raise self.fail(node, str(exc)) from None
        given = bool(args) or final is not _NONE
        if isinstance(value, Method):
            values = [self.arg(a, dot) for a in args or ()] + ([final] if final is not _NONE else [])
            values = [None if v is MISSING else v for v in values]
            try:
                result = value.invoke(values)
            except FuncError as exc:
                raise self.fail(node, str(exc)) from None
            self._made(node, result)
            return result
        if given:
            raise self.fail(node, self._not_a_method(receiver, names))
        return value

    def _not_a_method(self, receiver: Any, names: tuple[str, ...]) -> str:
        """Go's words for arguments given to a field: a struct's, or a map's key (``X is not a method
        but has arguments``)."""
        try:
            parent = self.resolve(receiver, names[:-1]) if len(names) > 1 else receiver
        except FuncError:
            parent = None
        if is_struct(parent):
            return f"{names[-1]} has arguments but cannot be invoked as function"
        return f"{names[-1]} is not a method but has arguments"

    def _call(self, cmd: Command, name: str, args: list[Node], dot: Any, final: Any) -> Any:
        self._step(cmd)
        if name in ("and", "or"):
            return self._logic(cmd, name, args, dot, final)
        values = [self.arg(a, dot) for a in args]
        if final is not _NONE:
            values.append(final)
        if name in _ANY_ARGS or name in self.funcs:  # Go passes an absent value as nil (``<nil>``)
            values = [None if v is MISSING else v for v in values]
        function = self.funcs.get(name) or _BUILTINS.get(name)
        if function is None:  # pragma: no cover - the parser refuses an unknown name
            raise self.fail(cmd, f'"{name}" is not a defined function')
        try:
            result = function(*values)
        except FuncError as exc:
            raise self.fail(cmd, f"error calling {name}: {exc}") from None
        except TypeError:
            raise self.fail(cmd, f"wrong number of args for {name}: got {len(values)}") from None
        except TemplateError:
            raise
        except (ValueError, OverflowError, RecursionError) as exc:  # Python's, never a crash of the caller
            safe = f"error calling {name}: bad argument"
            raise self.fail(cmd, f"error calling {name}: {exc}", safe) from None
        self._made(cmd, result)
        return result

    def _made(self, cmd: Node, result: Any) -> None:
        if isinstance(result, str | bytes | list | tuple | Mapping):
            self.made += len(result)
            if len(result) > self.max_output or self.made > RESULTS_PER_OUTPUT * self.max_output:
                raise self.fail(cmd, f"function results longer than {self.max_output} characters")

    def _logic(self, cmd: Command, name: str, args: list[Node], dot: Any, final: Any) -> Any:
        """``and``/``or``: the first false (true) argument or the last, evaluated left to right only as
        far as needed (Go's short circuit)."""
        thunks = [lambda a=a: self.arg(a, dot) for a in args] + (
            [lambda: final] if final is not _NONE else []
        )
        if not thunks:
            raise self.fail(cmd, f"wrong number of args for {name}: want at least 1 got 0")
        value: Any = None
        for thunk in thunks:
            value = thunk()
            if truth(value) == (name == "or"):
                return value
        return value


def _index(item: Any, *keys: Any) -> Any:
    for key in keys:
        if isinstance(item, Mapping):
            item = item.get(key, MISSING)
        elif isinstance(item, list | tuple | str):
            if not isinstance(key, int) or isinstance(key, bool):
                raise FuncError(f"cannot index slice/array with type {go_type(key)}")
            if not 0 <= key < len(item):
                raise FuncError(f"index out of range: {key}")
            item = item[key] if not isinstance(item, str) else item.encode()[key]
        elif item is None or item is MISSING:
            raise FuncError("index of untyped nil")
        else:
            raise FuncError(f"can't index item of type {go_type(item)}")
    return item


def _slice(item: Any, *bounds: Any) -> Any:
    if not isinstance(item, list | tuple | str):
        raise FuncError(f"can't slice item of type {go_type(item)}")
    if len(bounds) > (2 if isinstance(item, str) else 3):
        raise FuncError(f"too many slice indexes: {len(bounds)}")
    cut = [b for b in bounds]
    if any(not isinstance(b, int) or isinstance(b, bool) for b in cut):
        raise FuncError("cannot index slice/array with nil")
    start = cut[0] if cut else 0
    end = cut[1] if len(cut) > 1 else len(item)
    if not 0 <= start <= end <= len(item):
        raise FuncError(f"index out of range: {end if end > len(item) else start}")
    return item[start:end]


def _length(item: Any) -> int:
    if isinstance(item, str):
        return len(item.encode("utf-8", "surrogateescape"))
    if isinstance(item, Mapping | list | tuple):
        return len(item)
    raise FuncError(f"len of type {go_type(item)}")


#: the kinds Go compares (by their Go type name); anything else is not comparable
_KINDS = {"bool": "bool", "int": "int", "float64": "float", "string": "string", "<nil>": "nil"}
_KINDS |= dict.fromkeys(("uint64", "int64", "time.Duration", "os.FileMode"), "int")  # Docker's integers


def _kind(value: Any) -> str:
    return _KINDS.get(go_type(value), "other")


def _eq(first: Any, *others: Any) -> bool:
    if not others:
        raise FuncError("missing argument for comparison")
    for other in others:
        a, b = _kind(first), _kind(other)
        if "other" in (a, b):
            raise FuncError("non-comparable types")
        if a != b and "nil" not in (a, b):
            raise FuncError("incompatible types for comparison")
        if first == other and a == b:
            return True
    return False


def _ordered(name: str) -> Callable[[Any, Any], bool]:
    def compare(a: Any, b: Any) -> bool:
        ka, kb = _kind(a), _kind(b)
        if ka not in ("int", "float", "string") or kb not in ("int", "float", "string"):
            raise FuncError("invalid type for comparison")
        if ka != kb:
            raise FuncError("incompatible types for comparison")
        return {"lt": a < b, "le": a <= b, "gt": a > b, "ge": a >= b}[name]

    return compare


def _sprint(*args: Any) -> str:
    """``fmt.Sprint``: a space between two operands when neither is a string."""
    out = []
    for i, arg in enumerate(args):
        if i and not isinstance(arg, str) and not isinstance(args[i - 1], str):
            out.append(" ")
        out.append(go_text(arg))
    return "".join(out)


def _printf(template: Any, *args: Any) -> str:
    if not isinstance(template, str):
        raise FuncError(f"wrong type for value; expected string; got {go_type(template)}")
    return sprintf(template, args)


#: the built-ins whose arguments are Go's ``any``: an absent value reaches them as nil, as the caller's
#: functions' (``{{printf "%v" .nokey}}`` prints ``<nil>``, where ``{{.nokey}}`` prints ``<no value>``)
_ANY_ARGS = frozenset({"print", "printf", "println"})

_BUILTINS: dict[str, Callable[..., Any]] = {
    "not": lambda value: not truth(value),
    "len": _length,
    "index": _index,
    "slice": _slice,
    "print": _sprint,
    "printf": _printf,
    "println": lambda *args: " ".join(go_text(a) for a in args) + "\n",
    "eq": _eq,
    "ne": lambda a, b: not _eq(a, b),
    "lt": _ordered("lt"),
    "le": _ordered("le"),
    "gt": _ordered("gt"),
    "ge": _ordered("ge"),
    "html": lambda *args: html_escape(_sprint(*args)),
    "js": lambda *args: js_escape(_sprint(*args)),
    "urlquery": lambda *args: urllib.parse.quote_plus(_sprint(*args), safe="-_.~"),
}
