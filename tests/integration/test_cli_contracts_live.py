"""The CLI's output contracts a Docker user scripts against, on a live 2-node cluster (``p50l``,
10.95.6.0/24), what the unit tests cannot show: every missing service, task, node, secret, config,
network and stack is said in Docker's words (``Error: No such node: X``; docker/cli's own for ``service
inspect|ps|logs|scale``: ``no such service: X``..., exit 1; ``inspect a nosuch`` shows ``a``); a
``--format`` naming no field is Docker's ``template parsing error`` (exit 1); and a failed task is one
``failed`` event, not two (the leader's desired ``shutdown`` of it came as a second). h51: a command over
several names does every one it can and says the failures together at the end, as docker/cli's (``secret
rm a nosuch b``, ``service scale a=2 nosuch=2 a=x``), and ``service update --read-only=false --init=false
--no-healthcheck=false`` turns those off on the engine's containers (the ``=false`` was dropped)."""

from __future__ import annotations

import json
import shlex

from clusterkit import (
    IMAGE,
    P2PORCH,
    all_tasks,
    cli,
    cli_json,
    cluster_fixture,
    containers,
    service,
    wait_for,
)

cluster = cluster_fixture("p50l", "10.95.6.0/24", size=2)


def _said(sb, *argv: str) -> tuple[int, str]:
    result = cli(sb, "n2", *argv)
    return result.returncode, result.stderr.decode()


def test_a_missing_object_is_docker_s_no_such_everywhere(cluster) -> None:
    sb, _ = cluster
    for noun in ("service", "node", "secret", "config", "network"):
        inspect_said = "Error: no such service" if noun == "service" else f"Error: No such {noun}"
        assert _said(sb, noun, "inspect", "nosuch") == (1, f"{inspect_said}: nosuch\n")
        assert _said(sb, noun, "rm", "nosuch") == (1, f"Error: No such {noun}: nosuch\n")
    # docker/cli's own words for these (inspect.go, ps.go, scale.go, logs.go), whatever the daemon says
    assert _said(sb, "service", "ps", "nosuch") == (1, "no such service: nosuch\n")
    assert _said(sb, "service", "scale", "nosuch=2") == (1, "nosuch: Error: No such service: nosuch\n")
    assert _said(sb, "service", "logs", "nosuch") == (1, "no such task or service: nosuch\n")
    assert _said(sb, "node", "update", "--availability", "drain", "nosuch") == (
        1,
        "Error: No such node: nosuch\n",
    )
    assert _said(sb, "stack", "ps", "nosuch") == (1, "nothing found in stack: nosuch\n")
    created = cli(sb, "n1", "network", "create", "back")
    assert created.returncode == 0, created.stderr.decode()
    try:
        shown = cli(sb, "n2", "network", "inspect", "--format", "{{.Name}}", "back", "nosuch")
        assert (shown.returncode, shown.stdout, shown.stderr) == (
            1,
            b"back\n",
            b"Error: No such network: nosuch\n",
        )
    finally:
        cli(sb, "n1", "network", "rm", "back")


def test_a_format_naming_no_field_is_docker_s_error(cluster) -> None:
    sb, _ = cluster
    code, err = _said(sb, "node", "ls", "--format", "{{.Nope}}")
    assert code == 1
    assert err.startswith(
        'p2porch: error: --format: template parsing error: template: :1:2: executing "" at <.Nope>: '
        "can't evaluate field Nope in type row (fields: "
    )
    assert "Hostname" in err and "engine_version" not in err
    code, err = _said(sb, "node", "inspect", "--format", "{{.Nope}}", "self")
    assert code == 1 and "can't evaluate field Nope in type view (fields: " in err


def test_a_failed_task_is_one_failed_event(cluster) -> None:
    sb, nodes = cluster
    args = ("--restart-condition", "none", IMAGE, "sh", "-c", "exit 3")
    with service(sb, nodes, "fails", *args):

        def ended() -> str | None:  # failed, and then told to stay down by the leader
            done = [t for t in all_tasks(nodes[0], "fails") if t["state"] == "failed"]
            return done[0]["id"] if done and done[0]["desired_state"] == "shutdown" else None

        task_id = wait_for(ended, 90, "the failed task, told to stay down")
        result = cli(sb, "n1", "--json", "events", "--since", "10m", "--until", "0s", "-f", "type=task")
        assert result.returncode == 0, result.stderr.decode()
        events = [json.loads(line) for line in result.stdout.decode().splitlines()]
        states = [e["state"] for e in events if e.get("task_id") == task_id]
        assert states.count("failed") == 1, states


def _through_one_pipe(sb, command: str) -> str:
    """``p2porch COMMAND 2>&1; echo rc=$?`` on n2: both streams in the order written, and the exit code."""
    line = f"{shlex.join(P2PORCH)} {command} 2>&1; echo rc=$?"
    result = sb.exec("n2", ["sh", "-c", line], capture=True)
    return result.stdout.decode()


def test_several_names_say_their_failures_at_the_end_and_update_sets_booleans_false(cluster) -> None:
    sb, nodes = cluster
    p2porch = shlex.join(P2PORCH)
    for name in ("h51a", "h51b"):
        made = sb.exec("n1", ["sh", "-c", f"echo x | {p2porch} secret create {name}"], capture=True)
        assert made.returncode == 0, made.stderr.decode()
    said = _through_one_pipe(sb, "secret rm h51a nosuch h51b")
    assert said == "h51a\nh51b\nError: No such secret: nosuch\nrc=1\n"
    with service(sb, nodes, "flags", "--read-only", "--init", "--no-healthcheck", IMAGE, "sleep", "3600"):
        said = _through_one_pipe(sb, "service scale -d flags=2 nosuch=2 flags=x")
        assert said == (
            "flags scaled to 2\nnosuch: Error: No such service: nosuch\n"
            'flags: invalid replicas value x: strconv.ParseUint: parsing "x": invalid syntax\nrc=2\n'
        )
        updated = cli(
            sb,
            "n2",
            "service",
            "update",
            "-d",
            "--read-only=false",
            "--init=false",
            "--no-healthcheck=false",
            "flags",
        )
        assert updated.returncode == 0, updated.stderr.decode()
        spec = cli_json(sb, "n2", "service", "inspect", "flags")["spec"]
        assert spec.get("container", {}) == {} and spec["health"] is None and spec["replicas"] == 2

        def rolled() -> list[dict] | None:  # the engine runs the new spec on both tasks
            found = [c for n in nodes for c in containers(n, "flags")]
            hosts = [c["HostConfig"] for c in found]
            done = len(found) == 2 and not any(h["ReadonlyRootfs"] or h.get("Init") for h in hosts)
            return found if done else None

        wait_for(rolled, 120, "both tasks without read-only and init")
