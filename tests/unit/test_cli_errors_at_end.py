"""Commands over several names as docker/cli runs them (``service rm a nosuch b``): every name it can is
done and shown on stdout, the failures are collected and said together at the end on stderr, exit 1;
``network rm`` says each failure as it comes, as docker/cli's own ``network rm`` does. Before, every
command said a failure between the successes (a script reading ``2>&1`` saw them interleaved).

The two streams are recorded as one, in the order written (as ``2>&1`` through one pipe shows them)."""

from __future__ import annotations

import sys
from typing import Any

import pytest

from p2porch.cli import util as cli_util
from p2porch.cli.main import main
from p2porch.errors import DaemonUnreachable, NotAllowedError, P2POrchError, no_such
from p2porch.model.jobspec import global_scale_refusal

KINDS = {"services": "service", "nodes": "node", "networks": "network"}  # secret, config: as they are


class Daemon:
    """Knows ``a`` and ``b`` of every kind (stacks too), ``g`` a global service; ``nosuch`` is missing, as
    the daemon says it (``errors.no_such``); ``down`` is a daemon that stopped answering, ``ctrlc`` the
    user's Ctrl-C while it is asked."""

    def __init__(self) -> None:
        self.done: list[str] = []

    def _name(self, path: str) -> tuple[str, str]:
        parts = path.strip("/").split("/")  # services NAME [...] | objects KIND NAME | stacks NAME
        kind, name = (parts[1], parts[2]) if parts[0] == "objects" else (parts[0], parts[1])
        name = name.removeprefix("id-")  # an object's id: id-NAME
        if name == "down":
            raise DaemonUnreachable("cannot reach the p2porch daemon")
        if name == "ctrlc":
            raise KeyboardInterrupt
        if name == "locked":
            raise NotAllowedError(f"{name}: in use by service web", field="NAME")
        if name not in ("a", "b", "g"):
            raise no_such(KINDS.get(kind, kind), name, field="NAME")
        return kind, name

    def get(self, path: str, **_: Any) -> Any:
        if path.startswith("/objects/") and path.count("/") == 2:  # stack rm's list of secrets/configs
            return []
        if path.endswith("/tasks"):
            name = self._name(path)[1]
            return [{"id": f"task-of-{name}-0123456789", "name": f"{name}.1"}]
        name = self._name(path)[1]
        return {"id": f"id-{name}", "name": name, "spec": {"name": name}, "kind": "secret", "version": 1}

    def delete(self, path: str, body: Any = None) -> Any:
        kind, name = self._name(path)
        self.done.append(name)
        if kind == "stacks":
            return {"stack": name, "removed": [f"{name}_web"], "removed_networks": []}
        return {"name": name, "removed": name, "id": f"id-{name}"}

    def post(self, path: str, body: Any = None) -> Any:
        name = self._name(path)[1]
        if name == "g":  # a global service, refused as the daemon refuses it
            raise NotAllowedError(global_scale_refusal("g", "global"), field="replicas")
        self.done.append(name)
        return {"name": name, "replicas": (body or {}).get("replicas"), "version": 2, "mode": "replicated"}


class Recorder:
    """stdout and stderr as one stream of (stream, text), in the order written."""

    def __init__(self, log: list[tuple[str, str]], stream: str) -> None:
        self.log, self.stream = log, stream

    def write(self, text: str) -> int:
        if text:
            self.log.append((self.stream, text))
        return len(text)

    def flush(self) -> None:
        pass


@pytest.fixture
def daemon(monkeypatch: pytest.MonkeyPatch) -> Daemon:
    from p2porch.cli import network, node, secret, service, service_read, stack

    d = Daemon()
    for module in (cli_util, network, node, secret, service, service_read, stack):
        monkeypatch.setattr(module, "client_for", lambda args, **kw: d)
    return d


def run(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> tuple[int, list[tuple[str, str]]]:
    """The exit code and the lines written, each ``(stream, line)`` in the order written."""
    log: list[tuple[str, str]] = []
    with monkeypatch.context() as patched:
        patched.setattr(sys, "stdout", Recorder(log, "out"))
        patched.setattr(sys, "stderr", Recorder(log, "err"))
        try:
            code = main(argv)
        except P2POrchError as exc:  # what main lets through (nothing, today): visible in the test
            code = -1
            log.append(("raised", str(exc)))
    runs: list[tuple[str, str]] = []  # consecutive writes to one stream joined (print writes "\n" apart)
    for stream, text in log:
        if runs and runs[-1][0] == stream:
            runs[-1] = (stream, runs[-1][1] + text)
        else:
            runs.append((stream, text))
    return code, [(stream, line) for stream, text in runs for line in text.splitlines()]


@pytest.mark.parametrize(
    ("noun", "missing"),
    [
        (["service"], "Error: No such service: nosuch"),
        (["node"], "Error: No such node: nosuch"),
        (["secret"], "Error: No such secret: nosuch"),
        (["config"], "Error: No such config: nosuch"),
    ],
    ids=lambda v: v[0] if isinstance(v, list) else "",
)
def test_rm_removes_every_name_it_can_then_says_the_failures_together(noun, missing, daemon, monkeypatch):
    code, lines = run([*noun, "rm", "a", "nosuch", "b", "locked"], monkeypatch)
    assert code == 1
    assert daemon.done == ["a", "b"]
    assert lines == [
        ("out", "a"),
        ("out", "b"),
        ("err", missing),
        ("err", "p2porch: error: locked: in use by service web"),
    ]


def test_stack_rm_says_a_stack_that_failed_after_the_others_are_removed(daemon, monkeypatch):
    code, lines = run(["stack", "rm", "a", "locked", "b"], monkeypatch)
    assert code == 1
    said = [line for stream, line in lines if stream == "err"]
    assert said == ["p2porch: error: locked: in use by service web"]
    assert lines[-1][0] == "err" and ("out", "stack b removed") in lines


def test_network_rm_says_each_failure_as_it_comes_as_docker_clis_does(daemon, monkeypatch):
    """docker/cli's network/remove.go prints each error at once (``Fprintln(dockerCLI.Err(), err)``)."""
    code, lines = run(["network", "rm", "a", "nosuch", "b"], monkeypatch)
    assert code == 1
    assert lines == [("out", "a"), ("err", "Error: No such network: nosuch"), ("out", "b")]


@pytest.mark.parametrize("noun", ["service", "node", "secret", "config", "network"])
def test_inspect_shows_every_name_it_can_then_says_the_missing_ones(noun, daemon, monkeypatch):
    """docker/cli's inspect.Inspect: the elements found, then the errors joined (exit 1)."""
    code, lines = run([noun, "inspect", "--format", "{{.Name}}", "nosuch", "a", "nope", "b"], monkeypatch)
    assert code == 1
    said = "Error: no such service: {}" if noun == "service" else f"Error: No such {noun}: {{}}"
    assert lines == [
        ("out", "a"),
        ("out", "b"),
        ("err", said.format("nosuch")),
        ("err", said.format("nope")),
    ]


def test_service_ps_shows_the_tasks_found_before_the_missing_services(daemon, monkeypatch):
    code, lines = run(["service", "ps", "-q", "nosuch", "a", "b"], monkeypatch)
    assert code == 1
    assert lines == [("out", "task-of-a-01"), ("out", "task-of-b-01"), ("err", "no such service: nosuch")]


def test_service_scale_scales_the_others_and_says_the_failures_at_the_end(daemon, monkeypatch):
    """docker/cli's scale.go: ``a=1 nosuch=2 b=3`` scales a and b, then ``nosuch: ...`` (exit 1)."""
    code, lines = run(["service", "scale", "-d", "a=1", "nosuch=2", "b=3"], monkeypatch)
    assert code == 1
    assert daemon.done == ["a", "b"]
    assert lines == [
        ("out", "a scaled to 1"),
        ("out", "b scaled to 3"),
        ("err", "nosuch: Error: No such service: nosuch"),
    ]


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("x", 'strconv.ParseUint: parsing "x": invalid syntax'),
        ("-1", 'strconv.ParseUint: parsing "-1": invalid syntax'),
        ("1.5", 'strconv.ParseUint: parsing "1.5": invalid syntax'),
        ("18446744073709551616", 'strconv.ParseUint: parsing "18446744073709551616": value out of range'),
    ],
)
def test_service_scale_says_a_replicas_that_is_no_count_in_docker_clis_words(value, why, daemon, monkeypatch):
    code, lines = run(["service", "scale", "-d", f"a={value}", "b=2"], monkeypatch)
    assert code == 2  # bad input (docker/cli: 1)
    assert daemon.done == ["b"]
    assert lines == [("out", "b scaled to 2"), ("err", f"a: invalid replicas value {value}: {why}")]


@pytest.mark.parametrize("bad", ["a", "a=", "=2"])
def test_service_scale_refuses_a_pair_not_service_equals_replicas_before_any(bad, daemon, monkeypatch):
    code, lines = run(["service", "scale", "-d", "b=2", bad], monkeypatch)
    assert code == 2 and daemon.done == []
    assert lines[0] == ("err", f"p2porch: error: invalid scale specifier '{bad}'.")
    assert ("err", "See 'p2porch service scale --help'.") in lines


def test_a_daemon_gone_midway_stops_after_the_failures_before_it_are_said(daemon, monkeypatch):
    code, lines = run(["service", "rm", "a", "nosuch", "down", "b"], monkeypatch)
    assert code == 1 and daemon.done == ["a"]
    assert lines == [
        ("out", "a"),
        ("err", "Error: No such service: nosuch"),
        ("err", "p2porch: error: cannot reach the p2porch daemon"),
    ]


@pytest.mark.parametrize("noun", ["service", "node", "secret", "config", "network"])
def test_rm_prints_each_name_as_given_as_docker_cli(noun, daemon, monkeypatch):
    """docker/cli's rm prints the argument (``Fprintln(dockerCLI.Out(), id)``): an id given is printed as
    the id, not as the object's name (``service|secret|config|network rm`` printed the name)."""
    code, lines = run([noun, "rm", "id-a", "b"], monkeypatch)
    assert (code, lines) == (0, [("out", "id-a"), ("out", "b")])


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (
            ["service", "rm", "a", "nosuch", "ctrlc", "b"],
            [("out", "a"), ("err", "Error: No such service: nosuch")],
        ),
        (
            ["service", "scale", "-d", "a=1", "nosuch=2", "ctrlc=3", "b=1"],
            [("out", "a scaled to 1"), ("err", "nosuch: Error: No such service: nosuch")],
        ),
    ],
)
def test_ctrl_c_midway_says_the_failures_before_it(argv, said, daemon, monkeypatch):
    """Ctrl-C (anything but a failure of one name) stops at once (exit 130); the failures held are said
    first (before, they were lost: only a DaemonError said them)."""
    code, lines = run(argv, monkeypatch)
    assert (code, daemon.done, lines) == (130, ["a"], said)


class Dropping:
    """A tcp:// daemon (httpx's transport) that answers ``a``, says ``nosuch`` is missing and drops the
    connection when asked about ``b``, as a daemon stopped midway."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def __call__(self, request: Any) -> Any:
        import httpx

        name = request.url.path.split("/")[3]
        self.asked.append(name)
        if name == "b":
            raise httpx.RemoteProtocolError(
                "Server disconnected without sending a response.", request=request
            )
        if name == "nosuch":
            return httpx.Response(404, json=no_such("service", name, field="NAME").to_dict())
        return httpx.Response(200, json={"name": name, "version": 2, "mode": "replicated", "replicas": 1})


@pytest.mark.parametrize(
    ("argv", "first"),
    [
        (["service", "rm", "a", "nosuch", "b", "c"], ("out", "a")),
        (["service", "scale", "-d", "a=1", "nosuch=2", "b=3", "c=1"], ("out", "a scaled to 1")),
    ],
)
def test_a_connection_dropped_midway_says_the_failures_held_then_the_daemon_error(argv, first, monkeypatch):
    """Over tcp:// a dropped connection is httpx's RemoteProtocolError: it was no DaemonError (a
    traceback), and the failures held before it were lost."""
    import httpx

    from p2porch.api.client import ApiClient
    from p2porch.cli import service

    dropping = Dropping()
    client = ApiClient("tcp://127.0.0.1:9", token="t")
    client._client = httpx.Client(base_url=client.where, transport=httpx.MockTransport(dropping))
    for module in (cli_util, service):
        monkeypatch.setattr(module, "client_for", lambda args, **kw: client)
    code, lines = run(argv, monkeypatch)
    assert code == 1 and dropping.asked == ["a", "nosuch", "b"]
    said = (
        "nosuch: Error: No such service: nosuch" if argv[1] == "scale" else "Error: No such service: nosuch"
    )
    assert lines == [
        first,
        ("err", said),
        (
            "err",
            "p2porch: error: the p2porch daemon at https://127.0.0.1:9 broke off the answer "
            "(RemoteProtocolError('Server disconnected without sending a response.'))",
        ),
    ]


def test_service_scale_waits_for_each_and_says_each_that_failed(daemon, monkeypatch):
    """docker/cli's scale.go waits for every service scaled in turn, each failure held with the SERVICE
    as given (``fmt.Errorf("%s: %w", serviceID, err)``); before, the first failed wait stopped the others'."""
    from p2porch.cli import service

    waited: list[str] = []

    def wait_after(args: Any, client: Any, watches: Any) -> None:
        names = [w.name for w in watches]
        waited.extend(names)
        if names != ["b"]:
            raise P2POrchError(f"{names[0]}: task failed (see p2porch service ps {names[0]})")

    monkeypatch.setattr(service, "wait_after", wait_after)
    code, lines = run(["service", "scale", "id-a=1", "b=2", "a=3", "nosuch=1"], monkeypatch)
    assert code == 1 and waited == ["a", "b", "a"]
    assert lines == [
        ("out", "id-a scaled to 1"),
        ("out", "b scaled to 2"),
        ("out", "a scaled to 3"),
        ("err", "nosuch: Error: No such service: nosuch"),
        ("err", "id-a: task failed (see p2porch service ps a)"),
        ("err", "a: task failed (see p2porch service ps a)"),
    ]


def test_service_scale_of_a_global_service_by_id_says_the_id_once(daemon, monkeypatch):
    """docker/cli: ``3f2a: scale can only be used with replicated or replicated-job mode``; the daemon's
    message started with the service's name, so an id given read ``id-g: g: scale ...``."""
    code, lines = run(["service", "scale", "-d", "id-g=2", "g=1"], monkeypatch)
    assert code == 1
    refusal = global_scale_refusal("g", "global")
    assert refusal.startswith("scale can only be used with replicated or replicated-job mode (service g is")
    assert lines == [("err", f"id-g: {refusal}"), ("err", f"g: {refusal}")]
