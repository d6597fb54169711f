"""Every ``p2porch ...`` command README.md and docs/*.md show, through the CLI's real parser and the checks it
makes before it sends anything (exit 2: a flag renamed, a sub-command moved, a value now refused).

Extraction: each line of a fenced code block (a trailing ``\\`` joins the next line; a ``$ `` prompt, shell
comments, redirections and pipes to other programs are cut) and each inline code span, from every
``p2porch`` followed by a command name. A synopsis is tried twice: with its optional ``[...]`` parts left
out, and with them written out (the first of ``a|b`` alternatives; ``[node options]`` and ``[...]`` are
prose and left out); `` \\| ``/`` | `` between sub-commands gives one command each
(``network ls \\| rm NAME``).
Placeholders: an all-capitals word (``IMAGE``, ``NAME...``, ``PEER[:PORT]``), a ``<word>`` (``<peer>``) or
an elided token (``P2PT-1-...``) is replaced by a value of its kind (:data:`PLACEHOLDERS`, by the flag before
it for one-letter ones); ``$(...)`` by a name; a span that still holds ``...`` is prose about a command and
skipped (:func:`is_prose`).

Run: in this process, with no daemon. The control API client records the request and answers as an
unreachable daemon; ``init``/``join`` stop where they would start a daemon, ``daemon`` loads its
configuration only, ``sandbox`` stops where it would build hosts. A command passes when it exits 0 or
reached the point of sending; it fails with ``FILE:LINE``, the command and the CLI's message.
"""

from __future__ import annotations

import bisect
import importlib
import io
import os
import re
import shlex
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from p2porch.cli import cluster as cli_cluster
from p2porch.cli.daemon import load_daemon_config
from p2porch.errors import DaemonUnreachable
from p2porch.membership.token import JoinToken

cli_main = importlib.import_module("p2porch.cli.main")  # the module (p2porch.cli.main is also its function)

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
TOKEN = str(JoinToken(cluster_id="0123456789abcdef", secret=bytes(range(32))))  # fixed: the same ids each run
COMMANDS = {name for names in cli_main.COMMAND_MODULES.values() for name in names} | {"swarm"}
FENCE = re.compile(r"^\s*(```|~~~)")
ASSIGNMENT = re.compile(r"(?:^|\s)([A-Z][A-Z0-9_]*)=(\S+)\s+")  # `P2PORCH_TOKEN=T p2porch join`
START = re.compile(r"(?:^|(?<=[\s(;|&]))p2porch\s+(?=-|[a-z])")
#: a placeholder word -> the value typed for it; by the flag before it where one letter means several things
PLACEHOLDERS = {
    "IMAGE": "busybox:latest",
    "CMD": "sh",
    "NAME": "web",
    "SERVICE": "web",
    "TASK": "web.1",
    "NODE": "n1",
    "NET": "backend",
    "FILE": "FILE",  # a fixture file (a Compose file, also fine as a secret's data)
    "PEER": "10.0.0.1",
    "ADDR": "10.0.0.1",
    "IP": "10.0.0.1",
    "PORT": "7948",
    "CIDR": "10.240.0.0/16",
    "URL": "tcp://10.0.0.1:7949",
    "TOKEN": TOKEN,
    "K": "zone",
    "V": "a",
    "X": "init",
    "nI": "n1",
    "peer": "10.0.0.1",
}
BY_FLAG = {
    "--token": TOKEN,
    "--token-file": "F",
    "--since": "10m",
    "--until": "10m",
    "--interval": "2",
    "--tail": "10",
    "-n": "10",
    "--min": "1",
    "--max": "8",
    "--cpu-percent": "50",
    "--api-port": "7949",
    "--log-level": "info",
    "--nodes": "3",
    "--name": "web",
    "--domain": "p2p",
    "--pid-file": "daemon.pid",
    "--config": "p2porch.toml",
    "--ca-file": "cluster-ca.pem",
    "--raft-rtt-ms": "250",
}
POSITIONAL = {"node": "n1", "sandbox": "n1", "service": "web", "autoscale": "web", "stats": "web"}
#: documented refusals: a command the text says exits 2, and the words of its message
EXPECTED_USAGE_ERRORS = {
    ("swarm", "init"): "docker swarm init",
}
COMPOSE = "services:\n  web:\n    image: busybox:latest\n"
FIXTURES = {
    "FILE": COMPOSE,
    "docker-compose.yml": COMPOSE,
    "compose.yaml": COMPOSE,
    "base.yml": COMPOSE,
    "prod.yml": "services:\n  web:\n    environment: {MODE: prod}\n",
    "prod.env": "MODE=prod\n",
    "pw.txt": "s3cret\n",
    "new.txt": "s3cret2\n",
    "new-pw.txt": "s3cret2\n",
    "app.conf": "x=1\n",
    "nginx.conf": "events {}\n",
    "page.tmpl": "slot={{.Task.Slot}} node={{.Node.Hostname}}\n",
    "F": TOKEN + "\n",
    "laptop.token": "P2PA-laptop-0123456789\n",
    "cluster-ca.pem": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
    "p2porch.toml": "",
}


@dataclass(frozen=True)
class DocCommand:
    where: str  # FILE:LINE
    text: str  # as the doc shows it, from `p2porch` on
    argv: tuple[str, ...]  # after `p2porch`
    env: tuple[tuple[str, str], ...] = ()
    in_code: bool = True


# ----------------------------------------------------------------------------- extraction
def snippets(path: Path) -> list[tuple[int, str, int]]:
    """(line, text, code block number or 0 for an inline span) of each code line (continuations joined)
    and each inline span."""
    lines = path.read_text().splitlines()
    found: list[tuple[int, str, int]] = []
    block = 0
    prose: list[tuple[int, str]] = []
    in_code = False
    i = 0
    while i < len(lines):
        line = lines[i]
        if FENCE.match(line):
            in_code = not in_code
            block += in_code
        elif in_code:
            start, text = i, line
            while text.endswith("\\") and i + 1 < len(lines):
                i += 1
                text = text[:-1] + " " + lines[i].strip()
            found.append((start + 1, text, block))
        else:
            prose.append((i + 1, line))
        i += 1
    offsets, joined = [], ""
    for _, line in prose:
        offsets.append(len(joined))
        joined += line + "\n"
    for m in re.finditer(r"(?<!`)`([^`]+)`(?!`)", joined):
        line_no = prose[bisect.bisect_right(offsets, m.start()) - 1][0]
        found.append((line_no, m.group(1).replace("\n", " "), 0))
    return found


SHELL_PROGRAMS = {"grep", "jq", "head", "tail", "sort", "wc", "xargs", "cat", "less", "tee"}


def unquoted(text: str) -> Iterator[tuple[int, str]]:
    """Each character of ``text`` outside single and double quotes (the quotes themselves left out)."""
    quote = ""
    for i, ch in enumerate(text):
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        else:
            yield i, ch


def shell_part(text: str) -> str:
    """``text`` up to an unquoted comment, redirection, ``;``, ``&&`` or closing ``)``."""
    for i, ch in unquoted(text):
        if (ch == "#" and (i == 0 or text[i - 1].isspace())) or ch in ">;)&":
            return text[:i]
    return text


def top_level_split(text: str) -> list[str]:
    """``text`` split at each spaced ``|`` (or markdown's ``\\|``) outside quotes and ``[...]``."""
    parts, depth, last = [], 0, 0
    for i, ch in unquoted(text):
        if ch in "[]":
            depth += 1 if ch == "[" else -1
        elif ch == "|" and depth == 0 and text[i + 1 : i + 2] in (" ", "") and text[i - 1 : i] in (" ", "\\"):
            parts.append(text[last : i - 1 if text[i - 1] == "\\" else i])
            last = i + 1
    return [*parts, text[last:]]


def alternatives(text: str) -> list[str]:
    """The command, and a synopsis's `` | ``-separated sub-commands after it, each with the noun before
    it (``network ls | inspect NAME``); a pipe to another program ends it."""
    parts = [p.strip() for p in top_level_split(text)]
    noun = " ".join(parts[0].split()[:2])
    out = [parts[0]]
    for part in parts[1:]:
        first = part.split()[0] if part.split() else ""
        if first in SHELL_PROGRAMS or first == "p2porch":
            break
        if first and not first.startswith("-"):  # `\| --off`: a flag of the first form, covered by it
            out.append(f"{noun} {part}")
    return out


def groups(text: str, *, keep: bool) -> str:
    """Optional ``[...]`` parts removed (``keep=False``) or written out with their first alternative."""
    out, depth, start, last = [], 0, 0, 0
    for i, ch in unquoted(text):
        if ch == "[":
            if depth == 0:
                out.append(text[last:i])
                start = i + 1
            depth += 1
        elif ch == "]" and depth:
            depth -= 1
            if depth == 0:
                inner = re.split(r"\s*\\?\|\s*", groups(text[start:i], keep=keep))[0]
                if keep and inner.strip() not in ("node options", "...", ""):
                    out.append(inner)
                last = i + 1
    return "".join(out) + text[last:]


def word_value(word: str, before: str | None, noun: str) -> str:
    """One word with its placeholder replaced (``NAME...``, ``a|b``, ``--tail/-n``, ``K=V``, ``<peer>``)."""
    if word.startswith("P2PT-") and word.endswith("..."):
        return TOKEN
    word = word.removesuffix("...")
    if re.fullmatch(r"-[-\w]*(/-[-\w]*)+", word):
        word = word.split("/")[0]
    if "|" in word and not word.startswith("{"):
        word = word.replace("\\|", "|").split("|")[0]
    word = re.sub(r"^<(\w+)>$", r"\1", word)
    if re.fullmatch(r"[A-Z][A-Z0-9_]*|nI|peer", word):
        if before in BY_FLAG:
            return BY_FLAG[before]
        if word in ("N", "S"):
            return POSITIONAL.get(noun, "web")
        return PLACEHOLDERS.get(word, word)
    if ":" in word or "=" in word:  # PEER:PORT, ADDR:7948, K=V, label=K=V, image=IMAGE
        return re.sub(
            r"(?<![\w.-])([A-Z][A-Z0-9_]*)(?![\w.-])",
            lambda m: PLACEHOLDERS.get(m.group(1), m.group(1)),
            word,
        )
    return word


def is_prose(text: str) -> bool:
    """A span naming a command with ``...`` for its elided rest (`p2porch daemon ...`, `join ... --token`)
    or the start of commands (`p2porch sandbox exec nI --`)."""
    return bool(re.search(r"(^|\s)\.\.\.(\s|$)", text)) or text.rstrip().endswith(" --")


def typed_words(variant: str) -> list[str] | None:
    """The words after ``p2porch`` with placeholders filled; None for a message that names p2porch."""
    try:
        words = shlex.split(variant)[1:]
    except ValueError:
        words = variant.split()[1:]
    if not words[0].startswith("-") and words[0] not in COMMANDS:
        return None  # `p2porch has no ingress network`: a message, not a command
    noun = next((w for w in words if not w.startswith("-")), "")
    typed: list[str] = []
    for word in words:
        value = word_value(word, typed[-1] if typed else None, noun)
        if value:  # a lone `...` (`[--label-add K[=V]]...`) is no word
            typed.append(value)
    return typed


def commands_in(path: Path) -> list[DocCommand]:
    found: list[DocCommand] = []
    exported: dict[int, dict[str, str]] = {}  # a code block's `export VAR=value` lines, for the lines after
    for line_no, text, block in snippets(path):
        if block and text.lstrip().startswith("#"):
            continue
        if block and (export := re.match(r"\s*export\s+([A-Z][A-Z0-9_]*)=(\S+)", text)):
            exported.setdefault(block, {})[export[1]] = export[2]
            continue
        for m in START.finditer(text):
            assigned = {**exported.get(block, {}), **dict(ASSIGNMENT.findall(text[: m.start()]))}
            env = tuple((k, TOKEN if k == "P2PORCH_TOKEN" else v) for k, v in assigned.items())
            rest = re.sub(r"\$\((?:[^()]|\([^()]*\))*\)", "web", text[m.start() :])
            rest = re.sub(r"<([a-z]+)>", r"\1", rest)  # <peer>: before `>` reads as a redirection
            for form in alternatives(shell_part(rest)):
                if is_prose(form):
                    continue
                for variant in dict.fromkeys(groups(form, keep=keep) for keep in (False, True)):
                    argv = typed_words(variant)
                    if argv is not None:
                        where = f"{path.name}:{line_no}"
                        found.append(DocCommand(where, variant.strip(), tuple(argv), env, block > 0))
    return list(dict.fromkeys(found))


ALL = [c for path in DOCS for c in commands_in(path)]


# ----------------------------------------------------------------------------- running
class Reached(DaemonUnreachable):
    """The request the command would send: validation passed (the test's daemon is never there)."""


class OfflineApi:
    """The control API with no daemon: records each request and answers as an unreachable daemon."""

    sent: list[tuple[str, str]] = []

    def __init__(self, host: str, **_: Any) -> None:
        self.where = host
        self.socket_path = ""

    def _send(self, method: str, path: str) -> Any:
        OfflineApi.sent.append((method, path))
        raise Reached(f"(test) would send {method} {path}")

    def get(self, path: str, **_: Any) -> Any:
        return self._send("GET", path)

    def text(self, path: str) -> Any:
        return self._send("GET", path)

    def post(self, path: str, body: Any = None) -> Any:
        return self._send("POST", path)

    def post_read(self, path: str, body: Any = None) -> Any:  # a read sent as POST (a dry run's plan)
        return self._send("POST", path)

    def delete(self, path: str, body: Any = None) -> Any:
        return self._send("DELETE", path)

    def stream(self, path: str, **_: Any) -> Any:
        return self._send("GET", path)

    def close(self) -> None:
        pass


class NotBuilt:
    """Where ``sandbox`` would build hosts, or ``init/join --foreground`` run a daemon: past the checks."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        OfflineApi.sent.append(("BUILD", type(self).__name__))
        raise Reached("(test) would build hosts or run a daemon")


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    import p2porch.api.client as api_client
    import p2porch.daemon as daemon_module
    import p2porch.logs as logs
    import p2porch.sandbox.sandbox as sandbox_module

    for name, content in FIXTURES.items():
        (tmp_path / name).write_text(content)
    for var in ("P2PORCH_HOST", "P2PORCH_CONTEXT", "P2PORCH_API_TOKEN", "P2PORCH_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("P2PORCH_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(api_client, "ApiClient", OfflineApi)
    monkeypatch.setattr(sandbox_module, "Sandbox", NotBuilt)
    monkeypatch.setattr(daemon_module, "Daemon", NotBuilt)
    monkeypatch.setattr(logs, "setup_logging", lambda *a, **k: None)

    def start_daemon(args: Any) -> None:
        load_daemon_config(args)
        OfflineApi.sent.append(("DAEMON", "start"))

    monkeypatch.setattr(cli_cluster, "_start_background_daemon", start_daemon)
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(COMPOSE.encode())))
    OfflineApi.sent = []
    return tmp_path


def named_only(command: DocCommand) -> bool:
    """Prose naming a command, or one of its flags, not a command line: an inline `node rm`, `stack
    config`, `join --behind-nat` (its words and flags without values)."""
    words = [w for w in command.argv if not w.startswith("-")]
    return not command.in_code and len(words) <= 2 and all(re.fullmatch(r"[a-z][a-z-]*", w) for w in words)


def run(command: DocCommand, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> str:
    """'' when the command parses and passes the CLI's checks; else what it printed and its exit code."""
    for k, v in command.env:
        monkeypatch.setenv(k, v)
    prose_join = not command.in_code and command.argv[:1] == ("join",)
    if prose_join:  # `p2porch join PEER` in a sentence: the token exported, as the quick start does
        monkeypatch.setenv("P2PORCH_TOKEN", TOKEN)
    if command.argv[:2] != ("context", "create"):
        from p2porch.cli.context_store import Context, ContextStore

        store = ContextStore(os.environ["P2PORCH_CONFIG_DIR"])
        store.put(Context("prod", "tcp://10.0.0.1:7949", "t0k"), replace=True)
    argv = list(command.argv)
    try:
        if cli_main.command_word(argv) == "daemon":  # main would defer the daemon's modules in this process
            load_daemon_config(cli_main.build_parser("daemon").parse_args(argv))
            code = 0
        else:
            code = cli_main.main(argv)
    except SystemExit as exc:  # argparse's usage errors
        code = int(exc.code or 0)
    except Exception as exc:  # noqa: BLE001 - a traceback is a defect too: say which command
        return f"raised {exc!r}"
    err = capsys.readouterr().err
    expected = EXPECTED_USAGE_ERRORS.get(tuple(argv[:2]))
    if expected is not None:
        return "" if code == 2 and expected in err else f"exit {code}, expected 2 with {expected!r}: {err}"
    if code == 0 or (code == 1 and OfflineApi.sent):
        return ""
    if code == 2 and named_only(command) and "required" in err:
        return ""  # `p2porch node rm`, `service create \| ls`: prose naming a command, not a command line
    return f"exit {code}: {err.strip()}"


@pytest.mark.parametrize("command", ALL, ids=[f"{c.where} {' '.join(c.argv)[:60]}" for c in ALL])
def test_a_documented_command_parses_and_passes_the_clis_checks(command, offline, monkeypatch, capsys):
    problem = run(command, monkeypatch, capsys)
    assert not problem, f"{command.where}: `{command.text}` (typed as {list(command.argv)}): {problem}"


def test_the_docs_show_commands_of_every_noun():
    nouns = {c.argv[0] for c in ALL if c.argv}
    assert {"init", "join", "service", "node", "stack", "secret", "network", "sandbox", "context"} <= nouns
    assert len(ALL) > 200


def test_a_broken_example_fails_with_its_file_line_and_the_parsers_message(
    tmp_path, offline, monkeypatch, capsys
):
    doc = tmp_path / "broken.md"
    doc.write_text(
        "Scale:\n\n```\np2porch service create --name web --replicas three busybox  # typo\n```\n"
        "and `p2porch service scael web=2`.\n"
    )
    broken = commands_in(doc)
    assert [c.where for c in broken] == ["broken.md:4", "broken.md:6"]
    problems = [run(c, monkeypatch, capsys) for c in broken]
    assert "--replicas" in problems[0] and "exit 2" in problems[0]
    assert "scael" in problems[1] and "exit 2" in problems[1]


@pytest.mark.parametrize(
    ("text", "argv"),
    [
        (
            "p2porch node update NODE [--availability active\\|drain\\|pause] [--label-add K[=V]]...",
            [
                ("node", "update", "n1"),
                ("node", "update", "n1", "--availability", "active", "--label-add", "zone=a"),
            ],
        ),
        ("P2PORCH_TOKEN=P2PT-1-... p2porch join 10.0.0.1  # on every other machine", [("join", "10.0.0.1")]),
        (
            "p2porch sandbox exec n2 -- p2porch status",
            [("sandbox", "exec", "n2", "--", "p2porch", "status"), ("status",)],
        ),
    ],
)
def test_extraction_fills_placeholders_and_writes_optional_parts_out(tmp_path, text, argv):
    doc = tmp_path / "x.md"
    doc.write_text(f"```\n{text}\n```\n")
    assert [c.argv for c in commands_in(doc)] == argv


#: files the docs name as a branch's that main does not have (docs/performance.md, "What was tried")
OTHER_BRANCHES = {"tests/shell/test_raft_quiet_leader.py", "tests/unit/raft/test_quiet_leader_poller.py"}


def test_every_test_bench_and_script_file_the_docs_name_exists():
    """A path under tests/, bench/, scripts/ or p2porch/ that a doc names exists (``bench/NAME.py``: a
    placeholder; ``/etc/p2porch/p2porch.toml``: not the repository's)."""
    path_re = re.compile(r"(?<![\w/.-])((?:tests|bench|scripts|p2porch)/[\w/.-]+\.(?:py|sh|toml))")
    named = {(doc.name, m.group(1)) for doc in DOCS for m in path_re.finditer(doc.read_text())}
    missing = sorted(
        f"{doc}: {name}"
        for doc, name in named
        if not (ROOT / name).exists() and name not in OTHER_BRANCHES and not re.search(r"/[A-Z]+\.", name)
    )
    assert not missing, missing
