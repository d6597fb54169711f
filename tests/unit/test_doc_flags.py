"""Every ``--flag`` README.md and docs/*.md give a ``p2porch`` command exists in that command's parser.

``test_doc_commands.py`` types each ``p2porch ...`` command the docs show; this file covers the flags the
docs name without typing a whole command:

- a code span that starts with a command's words but not with ``p2porch`` (`sandbox up --init`,
  `service create|update --on-site-loss keep|replace`; `up --subnet CIDR`: a sub-command name alone
  stands for any command that has it, `sandbox up` or `stack up`), and a code block's command after its
  ``p2porch`` (its comment cut; a block's other programs, `ps -eo pid,rss --sort=-rss`, are not
  checked): each flag after them must be one of that command's (or, given before a sub-command's name,
  that sub-command's: `sandbox --name ms up --sites 2`), a global option, or one of Docker's the command
  refuses with its reason (``cli/refusals.py``);
- a code span that is a flag alone (`--on-site-loss keep|replace`, `--dns-upstream`): it must be a flag of
  some ``p2porch`` command, of this repository's other programs (the benchmarks in ``bench/``, the
  processes they start), or one of :data:`OTHER_TOOLS`, the flags of other programs the docs compare
  with, each listed with its program.

A flag renamed or removed in the CLI, or a doc naming one the CLI never had, fails with ``FILE:LINE``.
"""

from __future__ import annotations

import argparse
import importlib
import re
from collections.abc import Iterator
from pathlib import Path

from test_doc_commands import DOCS, START, shell_part, snippets, unquoted

cli_main = importlib.import_module("p2porch.cli.main")

ROOT = Path(__file__).resolve().parents[2]
#: Flags of other programs that a doc names in a span of their own, by the program they belong to.
OTHER_TOOLS = {
    "docker run": ("--tmpfs", "--volumes-from", "--memory-swappiness", "--restart"),
    "docker swarm update": ("--task-history-limit",),
    "dockerd": ("--iptables",),
    "iptables": ("--dst-type",),
    "kube-apiserver": ("--request-timeout",),
    "chromium": ("--headless", "--ignore-certificate-errors-spki-list"),
    "a Compose sample's command": ("--tls", "--raft"),
    "py-spy": ("--subprocesses",),
    "duplicates": ("--min-lines",),
}
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*(?:\{[a-z,]+\}[a-z0-9-]*)?(?:/-[a-z][a-z0-9-]*)*")


def parser_tree() -> dict[tuple[str, ...], set[str]]:
    """Each command path (``("sandbox", "up")``; ``()`` the top) -> the option strings its parser takes."""
    tree: dict[tuple[str, ...], set[str]] = {}

    def walk(parser: argparse.ArgumentParser, path: tuple[str, ...]) -> None:
        flags: set[str] = set()
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, child in action.choices.items():
                    walk(child, (*path, name))
            else:
                flags.update(action.option_strings)
        tree[path] = flags

    walk(cli_main.build_parser(), ())
    return tree


TREE = parser_tree()
ALL_FLAGS = set().union(*TREE.values())
#: a sub-command name -> every command path it ends (``up`` -> ``sandbox up`` and ``stack up``)
BY_NAME: dict[str, list[tuple[str, ...]]] = {}
for _path in TREE:
    if _path:
        BY_NAME.setdefault(_path[-1], []).append(_path)


def program_flags() -> set[str]:
    """The long options of this repository's other programs: the benchmarks (``bench/*.py``) and the
    processes the tests and benchmarks start (a Raft store process, ``p2porch/raft/node.py``...): every
    ``"--name"`` string in their code."""
    found: set[str] = set()
    for path in [*(ROOT / "bench").glob("*.py"), *(ROOT / "p2porch").rglob("*.py")]:
        found.update(re.findall(r"[\"'](--[a-z][a-z0-9-]*[a-z0-9])[\"']", path.read_text()))
    return found


def flags_in(text: str) -> Iterator[str]:
    """Each long flag ``text`` names: ``--a/--b`` both, ``--x-add/-rm`` as ``--x-add`` and ``--x-rm``,
    ``--advertise-{gossip,raft}-port`` expanded; ``--rollback-*`` (a family) is no flag."""
    outside = "".join(ch for _, ch in unquoted(text)).replace("/--", " --")
    for m in FLAG.finditer(outside):
        if m.group(0).endswith("-") or outside[m.end() : m.end() + 1] == "*":
            continue  # `--rollback-*`, `--limit-*`: a family of flags
        first, *suffixes = m.group(0).split("/")
        braces = re.fullmatch(r"(--[a-z0-9-]*)\{([a-z,]+)\}([a-z0-9-]*)", first)
        yield from [braces[1] + part + braces[3] for part in braces[2].split(",")] if braces else [first]
        for suffix in suffixes:
            if len(suffix) > 2:  # `-rm` of `--dns-add/-rm`; `-f` of `--format/-f` is a short option
                yield first.rsplit("-", suffix.count("-"))[0] + suffix


def command_span(text: str) -> tuple[list[list[tuple[str, ...]]], str] | None:
    """The commands a span starts with and the rest of it, or None when it does not start with a
    command's words (or starts with ``p2porch``: typed elsewhere). Each inner list is one command the span
    means, as its candidates: ``service create|update`` means two commands (each must take the flags),
    ``up`` means one of ``sandbox up`` and ``stack up`` (one of them must)."""
    words = text.split()
    if not words or (words[0] not in BY_NAME and (words[0],) not in TREE):
        return None
    groups = [[(words[0],)]] if (words[0],) in TREE else [BY_NAME[words[0]]]
    used = 1
    for word in words[1:]:
        deeper = [
            found
            for group in groups
            for alt in word.split("|")
            if (found := [(*path, alt) for path in group if (*path, alt) in TREE])
        ]
        if not deeper:
            break
        groups, used = deeper, used + 1
    return groups, " ".join(words[used:])


def flags_taken(group: list[tuple[str, ...]], rest: str) -> set[str]:
    """The flags the commands of ``group`` take, the global ones, and those of each command below them whose
    name ``rest`` goes on with: a parent's options come before it (`sandbox --name ms up --sites 2`)."""
    words = set(rest.split())
    below = [c for c in TREE for path in group if c[: len(path)] == path and set(c[len(path) :]) <= words]
    return TREE[()].union(*(TREE[command] for command in below))


def spans_of(text: str, block: int) -> Iterator[str]:
    """The pieces of a snippet that may start with a command's words. A fenced line is another program's
    (`ps -eo pid,rss --sort=-rss`, `node --version`) unless the piece starts with ``p2porch``: only what
    follows that word is given, its comment and redirections cut (``shell_part``)."""
    for piece in re.split(r"\s(?:\\?\||&&|;|--)\s", text):
        if block == 0:
            yield piece.strip()
        elif found := START.match(command := shell_part(piece.strip().removeprefix("$ "))):
            yield command[found.end() :].strip()


def attributed(docs: list[Path] = DOCS) -> Iterator[tuple[str, str, str, set[str]]]:
    """(FILE:LINE, flag, command, the flags that command takes) for each flag a doc gives a command."""
    for path in docs:
        name = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path.name
        for line, text, block in snippets(path):
            for piece in spans_of(text, block):
                found = command_span(piece)
                if found is None:
                    continue
                groups, rest = found
                for group in groups:
                    takes = flags_taken(group, rest)
                    command = " or ".join(" ".join(command) for command in group)
                    for flag in flags_in(rest):
                        yield f"{name}:{line}", flag, command, takes


def bare() -> Iterator[tuple[str, str]]:
    """(FILE:LINE, flag) for each inline span that is a flag (with its value) and names no command."""
    for path in DOCS:
        for line, text, block in snippets(path):
            if block == 0 and text.startswith("--"):
                for flag in flags_in(text.split()[0]):
                    yield f"{path.relative_to(ROOT)}:{line}", flag


def test_the_attribution_finds_flags() -> None:
    """The extraction works: README gives `sandbox up` its flags, and a flag alone is seen."""
    given = {(flag, command) for where, flag, command, _ in attributed() if where.startswith("README.md")}
    assert ("--init", "stack up or sandbox up") in given
    assert any(flag == "--on-site-loss" for _, flag in bare())


def test_a_flag_given_to_a_command_is_one_it_takes() -> None:
    wrong = [
        f"{where}: `{command}` has no {flag}"
        for where, flag, command, takes in attributed()
        if flag not in takes
    ]
    assert not wrong, "\n".join(wrong)


def test_other_programs_lines_are_not_p2porchs(tmp_path: Path) -> None:
    """A fenced line of another program (or a comment) names no p2porch flag; a stale one after
    ``p2porch`` in a fenced line is still found."""
    others = [
        "ps -eo pid,rss --sort=-rss",
        "ls --color=never",
        "node --version",
        "init ...   # as docker swarm init --force-new-cluster",
        "$ p2porch init ...   # as docker swarm init --force-new-cluster",
        "p2porch service ls | ps --sort=-rss",
    ]
    doc = tmp_path / "fake.md"
    doc.write_text("\n".join(["```sh", *others, "```", ""]))
    assert [flag for _, flag, _, _ in attributed([doc])] == []
    doc.write_text("\n".join(["```sh", *others, "p2porch service create --stale-flag IMAGE", "```", ""]))
    wrong = [(where, flag) for where, flag, _, takes in attributed([doc]) if flag not in takes]
    assert wrong == [("fake.md:8", "--stale-flag")]


def test_a_flag_named_alone_exists() -> None:
    known = ALL_FLAGS | program_flags() | {flag for flags in OTHER_TOOLS.values() for flag in flags}
    wrong = [
        f"{where}: {flag} is no flag of p2porch, of bench/ or of OTHER_TOOLS"
        for where, flag in bare()
        if flag not in known
    ]
    assert not wrong, "\n".join(wrong)


def test_every_other_programs_flag_is_named() -> None:
    """:data:`OTHER_TOOLS` holds only flags a doc still names alone, none of them p2porch's."""
    named = {flag for _, flag in bare()}
    listed = {flag for flags in OTHER_TOOLS.values() for flag in flags}
    assert listed <= named
    assert not listed & ALL_FLAGS
