"""Shared pieces of the command line: the argument parser class, exit codes, output and the API client.

Owns how results are shown (tables, or JSON with ``--json``) and which daemon a command talks to. It
holds no command of its own.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeGuard

from ..errors import NO_SUCH, NOTHING_IN_STACK, ConfigError, DaemonError, NotFoundError, P2POrchError
from ..paths import DEFAULT_SOCKET

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def duration_arg(text: str) -> str:
    """A duration flag's value as Docker's CLI reads it, Go's ``time.ParseDuration`` (``500ms``, ``10s``,
    ``1m30s``, a lone ``0``): anything else is refused by argparse naming the flag (exit 2) in Go's words,
    a bare number with the form it wants (``time: missing unit in duration "10"``: ``10s``). The text
    goes on unchanged: the spec reads it."""
    from ..model.units import parse_go_duration  # the model: not in the CLI's start (nor a daemon's, first)

    try:
        parse_go_duration(text)
    except ValueError as exc:
        bare = re.fullmatch(r"[0-9]*\.?[0-9]+", text) is not None
        hint = f"a duration needs a unit: {text}s" if bare else "e.g. 500ms, 10s, 1m30s"
        raise argparse.ArgumentTypeError(f'invalid argument "{text}": {exc} ({hint})') from None
    return text


class UsageError(ConfigError):
    """Invalid command-line usage (exit code 2)."""


SHORT_USAGE_LINES = 4  # a longer usage (service create's is ~70 lines) would bury the error
#: Go's ``strconv.ParseBool`` words, as Docker's boolean flags take them after ``=`` (``--detach=false``)
GO_BOOLS = {w: True for w in ("1", "t", "T", "true", "TRUE", "True")} | {
    w: False for w in ("0", "f", "F", "false", "FALSE", "False")
}


def negation_of(flag: str) -> str:
    """The flag that turns ``flag`` off: ``--read-only`` -> ``--no-read-only``, ``--no-healthcheck`` ->
    ``--healthcheck``."""
    bare = flag.lstrip("-")
    return "--" + bare.removeprefix("no-") if bare.startswith("no-") else "--no-" + bare


def explicit_bools(args: Sequence[str], parser: argparse.ArgumentParser) -> list[str]:
    """``args`` with Docker's ``--FLAG=true`` written ``--FLAG`` and ``--FLAG=false`` left out (or written
    as its negation when the parser has it, ``negation_of``: ``service update --read-only=false`` turns
    it off, ``stack deploy --no-prune=false`` prunes),
    for each of ``parser``'s flags that take no value (argparse would refuse the value: "ignored explicit
    argument").
    Another value after ``=`` stays for argparse to refuse; nothing is rewritten after ``--``, nor, when
    the parser ends in a command (``service create IMAGE CMD...``, subcommands), after its first
    positional word: the rest is the command's."""
    options = parser._option_string_actions
    stops = any(a.nargs in (argparse.REMAINDER, argparse.PARSER) for a in parser._get_positional_actions())
    out: list[str] = []
    value_next = False
    for at, word in enumerate(args):
        name, sep, value = word.partition("=")
        action = options.get(name) if name.startswith("-") else None
        if word == "--" or (stops and not value_next and not word.startswith("-")):
            return out + list(args[at:])
        value_next = action is not None and action.nargs != 0 and not sep
        if action is not None and sep and action.nargs == 0 and action.dest != "help" and value in GO_BOOLS:
            negation = negation_of(name)  # a hidden --no-FLAG turns the setting off (--read-only=false)
            out.extend([name] if GO_BOOLS[value] else [negation] if negation in options else [])
        else:
            out.append(word)
    return out


class Parser(argparse.ArgumentParser):
    """argparse that reports usage errors with exit code 2 and the offending flag in the message; the
    usage only when it is short, then where to read the rest (``See 'p2porch service create --help'.``,
    as Docker says it). A value that starts with ``-`` and a digit is a value, not a flag (``--limit-memory
    -5M``, ``--stop-grace-period -3s``: refused by the flag's own check, as Docker's ``invalid argument
    "-5M" for "--limit-memory"``; argparse's ``expected one argument`` named no value); no p2porch flag
    looks like a negative number. A flag that takes no value also takes Docker's ``=true``/``=false``
    (``--detach=false``, ``--read-only=true``: ``explicit_bools``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._negative_number_matcher = re.compile(r"^-\d")

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:
        args = explicit_bools(sys.argv[1:] if args is None else args, self)
        parsed, extras = super().parse_known_args(args, namespace)
        if not hasattr(parsed, "_command_parser"):  # the innermost command's parser sets it first
            parsed._command_parser = self
        return parsed, extras

    def parse_args(self, args: Any = None, namespace: Any = None) -> Any:
        """As argparse's, but an unknown flag is reported by the command it was given to (``p2porch
        service create: error: unrecognized arguments: --x``, with that command's help), not the top."""
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            parser = getattr(parsed, "_command_parser", self)
            parser.error(f"unrecognized arguments: {' '.join(extras)}{parser.suggestion(extras)}")
        return parsed

    def suggestion(self, extras: Sequence[str]) -> str:
        """`` (did you mean --replicas?)`` for the first unknown flag close to one of this command's
        (shown in its help), else ""."""
        import difflib  # only on this error path: the daemon command never loads it (memory)

        shown = [
            option
            for action in self._actions
            if action.help != argparse.SUPPRESS
            for option in action.option_strings
            if option.startswith("--")
        ]
        for word in extras:
            if word.startswith("--"):
                close = difflib.get_close_matches(word.partition("=")[0], shown, n=1, cutoff=0.75)
                if close:
                    return f" (did you mean {close[0]}?)"
        return ""

    def error(self, message: str) -> None:  # type: ignore[override]
        usage = self.format_usage()
        if usage.count("\n") <= SHORT_USAGE_LINES:
            sys.stderr.write(usage)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\nSee '{self.prog} --help'.\n")


#: Docker's other names of an action (``docker service list``, ``stack up``), for any noun or one
DOCKER_ALIASES: dict[str, tuple[str, ...]] = {
    "ls": ("list",),
    "rm": ("remove",),
    "stack deploy": ("up",),
    "stack rm": ("remove", "down"),
}
ActionAdder = Callable[[str, str, Any], argparse.ArgumentParser]


def noun_actions(sub: Any, common: argparse.ArgumentParser, noun: str, help_text: str) -> ActionAdder:
    """Add the noun ``noun`` (``p2porch NOUN ACTION ...``) and return a function that adds one of its actions:
    ``action(name, help, fn)`` gives the action's parser, run by ``fn``."""
    from .refusals import add_refusals  # the nouns' table (dataclasses): init and join never load it

    parser = sub.add_parser(noun, parents=[common], help=help_text)
    actions = parser.add_subparsers(dest=f"{noun}_command", metavar="ACTION", parser_class=Parser)
    actions.required = True

    def action(name: str, action_help: str, fn: Any) -> argparse.ArgumentParser:
        aliases = DOCKER_ALIASES.get(f"{noun} {name}", DOCKER_ALIASES.get(name, ()))
        p = actions.add_parser(
            name, aliases=list(aliases), parents=[common], help=action_help, description=action_help
        )
        p.set_defaults(func=fn)
        add_refusals(p, f"{noun} {name}")  # Docker's flags it lacks, refused with the reason
        return p

    return action


def _int_at_least(text: str, minimum: int, bound: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid integer {text!r}") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"must be {bound}, got {value}")
    return value


def positive_int(text: str) -> int:
    return _int_at_least(text, 1, "at least 1")


def non_negative_int(text: str) -> int:
    return _int_at_least(text, 0, "0 or more")


def positive_seconds(text: str) -> float:
    """Seconds given as a number (``300``) or as a duration like every other duration flag (``20s``,
    ``5m``, ``1m30s``: Go's form); a duration was refused as an "invalid number of seconds"."""
    from ..model.units import parse_go_duration

    try:
        value = float(text)
    except ValueError:
        try:
            value = parse_go_duration(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"invalid number of seconds or duration {text!r} (e.g. 300, 20s, 5m)"
            ) from None
    if not 0 < value <= 86400:  # also refuses nan and inf
        raise argparse.ArgumentTypeError(f"must be more than 0 and at most 86400 seconds, got {text}")
    return value


# ----------------------------------------------------------------------------- parser
def host_of(args: argparse.Namespace) -> str:
    """The local daemon's socket (--host or $P2PORCH_HOST, never a context): init, join and daemon."""
    return getattr(args, "host", None) or os.environ.get("P2PORCH_HOST") or f"unix://{DEFAULT_SOCKET}"


def local_client_for(args: argparse.Namespace, timeout_s: float = 30.0) -> Any:
    """A client of this machine's daemon (init/join start one there)."""
    from ..api.client import ApiClient

    return ApiClient(host_of(args), timeout_s=timeout_s)


def connection_of(args: argparse.Namespace) -> Any:
    """The daemon, token and CA a command uses: flags, environment, contexts (cli.contexts.resolve)."""
    from .context_store import resolve

    return resolve(
        host=getattr(args, "host", None),
        context=getattr(args, "context", None),
        token_file=getattr(args, "token_file", None),
        ca_file=getattr(args, "tls_ca", None),
        env=os.environ,
    )


LONG_OPERATION_TIMEOUT_S = 90.0  # node rm, rotate-keys: a leader step-down and a key switch


def client_for(args: argparse.Namespace, timeout_s: float = 30.0) -> Any:
    from ..api.client import ApiClient

    conn = connection_of(args)
    return ApiClient(
        conn.host,
        token=conn.token or None,
        ca_pem=conn.ca_pem or None,
        timeout_s=timeout_s,
        stale=bool(getattr(args, "stale", False)),
    )


def wants_json(args: argparse.Namespace) -> bool:
    return bool(getattr(args, "json", False))


def add_ids_only(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """``-q/--quiet`` of a list command: only the IDs, one a line (``docker service rm $(... ls -q)``)."""
    p.add_argument("--quiet", "-q", dest="ids_only", action="store_true", help="only display IDs")
    return p


def emit(args: argparse.Namespace, data: Any, render: Callable[[Any], str]) -> None:
    """Print ``data`` as JSON with --json, only its rows' IDs with -q (``add_ids_only``), otherwise
    through ``render``."""
    if wants_json(args):
        print(json.dumps(data, indent=2, sort_keys=True))
    elif getattr(args, "ids_only", False):
        for row in data:
            print(row["id"])
    else:
        text = render(data)
        if text:
            print(text)


class DockerText(NotFoundError):
    """A missing object in the words docker/cli's own command writes, whatever the daemon said
    (``service ps``: ``no such service: web``): printed by :func:`error_line` as it is, exit 1."""


#: how docker/cli's own words for a missing object begin (``service ps``, ``service inspect``): as they are
DOCKER_SAYS = ("no such ", "Error: no such ")


@contextlib.contextmanager
def docker_words(text: Callable[[NotFoundError], str]) -> Iterator[None]:
    """A missing object (``errors.no_such``) in the block said as docker/cli's command says it itself:
    ``text(exc)`` (``service logs``: ``no such task or service: X``), a :class:`DockerText`; any other
    error as it is."""
    try:
        yield
    except NotFoundError as exc:
        if not exc.message.startswith(NO_SUCH):
            raise
        raise DockerText(text(exc), field=exc.field) from None


def error_line(exc: P2POrchError) -> str:
    """The stderr line of a failed command: a missing object in Docker's words, as its CLI prints them
    (``Error: No such network: back``: ``errors.no_such``; docker/cli's own words, a :class:`DockerText`
    or a message starting ``no such ``/``Error: no such ``, and ``nothing found in stack: shop`` alone),
    anything else ``p2porch: error: MESSAGE``."""
    as_said = isinstance(exc, NotFoundError) and exc.message.startswith(DOCKER_SAYS)
    if isinstance(exc, DockerText) or as_said:
        return exc.message
    if isinstance(exc, NotFoundError) and exc.message.startswith(NO_SUCH):
        return f"Error: {exc.message}"
    if isinstance(exc, NotFoundError) and exc.message.startswith(NOTHING_IN_STACK):
        return exc.message
    return f"p2porch: error: {exc.message}"


class Failures:
    """What a command over several names (``service rm a nosuch b``) could not do, as docker/cli reports
    it: each failure's stderr line kept and printed together once the others are done and shown
    (``errors.Join``: ``service|node|secret|config|stack rm``, every ``inspect``, ``service scale``), or
    with ``at_once`` printed as it comes (``network rm``, as docker/cli's). The exit code is the worst
    failure's: 2 for bad input, 1 otherwise."""

    def __init__(self, *, at_once: bool = False) -> None:
        self.at_once = at_once
        self.lines: list[str] = []
        self.codes = [EXIT_OK]

    def add(self, exc: P2POrchError, line: str | None = None) -> None:
        """The failure ``exc``, said as ``error_line`` says it unless ``line`` is given."""
        self.codes.append(EXIT_USAGE if isinstance(exc, ConfigError) else EXIT_FAILED)
        text = error_line(exc) if line is None else line
        if self.at_once:
            sys.stdout.flush()  # after what stdout already holds, also through one pipe (2>&1)
            print(text, file=sys.stderr, flush=True)
        else:
            self.lines.append(text)

    def report(self) -> int:
        """Print the kept lines on stderr (once, after everything stdout holds); the exit code."""
        sys.stdout.flush()
        if self.lines:
            print("\n".join(self.lines), file=sys.stderr, flush=True)
        self.lines = []
        return max(self.codes)


def held(exc: BaseException) -> TypeGuard[P2POrchError]:
    """A failure of one name (missing, refused), held while the others go on; anything else (a daemon
    that cannot be reached, a connection dropped midway, Ctrl-C, a bug) stops the command."""
    return isinstance(exc, P2POrchError) and not isinstance(exc, DaemonError)


def each_name(
    names: Sequence[str], call: Callable[[str], Any], failures: Failures
) -> Iterator[tuple[str, Any]]:
    """``(name, call(name))`` of every name in turn, as ``docker rm|inspect a b c``: a name that fails is
    added to ``failures`` and the others are still called; anything else raised (not ``held``: a daemon
    gone, a dropped connection, Ctrl-C) stops at once, after the failures before it are said."""
    for name in names:
        try:
            result = call(name)
        except BaseException as exc:
            if held(exc):
                failures.add(exc)
                continue
            failures.report()
            raise
        yield name, result


def remove_each(
    args: argparse.Namespace,
    names: Sequence[str],
    remove: Callable[[Any, str], Any],
    line: Callable[[str, Any], str],
    *,
    one_as_object: bool = False,
    timeout_s: float = 30.0,
    errors_at_once: bool = False,
) -> int:
    """Remove every name in turn (``remove(client, name)``, e.g. ``deleter("/networks/{}")``), as
    ``docker rm a b c`` does: each removal is printed (``line(name given, result)``: the name given, as
    docker/cli's) as it is done, a
    name that fails is said on stderr after the others are removed (``errors_at_once``: as it comes, as
    docker/cli's ``network rm``); with --json, one list of what was removed (with ``one_as_object``, a
    single name's result alone, as ``stack rm`` printed it). The exit code is the worst failure's
    (:class:`Failures`). A daemon that cannot be reached stops at once."""
    client = client_for(args, timeout_s=timeout_s)
    failures, removed = Failures(at_once=errors_at_once), []
    for name, result in each_name(names, lambda name: remove(client, name), failures):
        removed.append(result)
        text = "" if wants_json(args) else line(name, result)
        if text:  # an empty line: nothing to say on stdout
            print(text, flush=True)
    print_removed_json(args, removed, alone=one_as_object and len(names) == 1)
    return failures.report()


def print_removed_json(args: argparse.Namespace, removed: list[Any], *, alone: bool) -> None:
    """With --json, what a removal of several names removed: one list; ``alone`` (a single name given,
    as ``stack rm`` printed it): that name's result by itself, nothing when it failed."""
    if not wants_json(args):
        return
    if not alone:
        print(json.dumps(removed, indent=2, sort_keys=True))
    elif removed:
        print(json.dumps(removed[0], indent=2, sort_keys=True))


def as_given(name: str, result: Any) -> str:
    """A ``remove_each`` line: the name as given, as docker/cli's ``rm`` prints it (an id prefix too)."""
    return name


def deleter(path: str) -> Callable[[Any, str], Any]:
    """A ``remove_each`` remover: ``DELETE path.format(name)``, the daemon's answer as the result."""

    def remove(client: Any, name: str) -> Any:
        return client.delete(path.format(name))

    return remove


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[("" if v is None else str(v)) for v in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    lines = ["  ".join(h.upper().ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    return "\n".join(lines)


def command(
    sub: Any,
    common: argparse.ArgumentParser,
    name: str,
    help_text: str,
    fn: Callable[[argparse.Namespace], int],
    aliases: Sequence[str] = (),
) -> argparse.ArgumentParser:
    """Add the top-level command ``name`` (also called ``aliases``) running ``fn``."""
    p: argparse.ArgumentParser = sub.add_parser(
        name, parents=[common], help=help_text, description=help_text, aliases=list(aliases)
    )
    p.set_defaults(func=fn)
    return p
