"""The h44 CLI walk on a live 3-node cluster (``p5wk3``, 10.98.3.0/24), what the unit tests cannot show:
``service logs TASK`` gives one task's lines whichever node it runs on (its node's agent answers over the
join port for a remote one), and Docker's ``service inspect -f ... $(service ls -q)`` idiom shows every
service."""

from __future__ import annotations

from clusterkit import FAST_STOP, IMAGE, cli, cluster_fixture, service, wait_for

cluster = cluster_fixture("p5wk3", "10.98.3.0/24")

SAY_SLOT = 'echo "slot $P2PORCH_SLOT on $P2PORCH_NODE"; exec sleep 3600'


def _lines(sb, node: str, *args: str) -> list[str]:
    result = cli(sb, node, "service", "logs", "--raw", *args)
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout.decode().splitlines()


def test_logs_of_a_task_and_inspect_of_every_listed_service(cluster) -> None:
    sb, nodes = cluster
    with service(sb, nodes, "talk", "--replicas", "3", *FAST_STOP, IMAGE, "sh", "-c", SAY_SLOT):
        wait_for(lambda: len(_lines(sb, "n1", "talk")) == 3, 60, "a line from each of talk's 3 tasks")
        listed = cli(sb, "n2", "service", "ps", "-q", "--filter", "desired-state=running", "talk")
        task_ids = listed.stdout.decode().split()
        assert len(task_ids) == 3, listed.stderr.decode()
        seen = set()
        for task_id in task_ids:  # asked from n2: most of the tasks run on another node
            (line,) = _lines(sb, "n2", task_id[:12])
            seen.add(line)
        assert len(seen) == 3 and all(line.startswith("slot ") for line in seen)
        missing = cli(sb, "n2", "service", "logs", "nosuchtask")
        assert (missing.returncode, missing.stderr.decode()) == (
            1,
            "no such task or service: nosuchtask\n",  # docker/cli's logs.go words
        )
        ids = cli(sb, "n1", "service", "ls", "-q").stdout.decode().split()
        shown = cli(
            sb, "n1", "service", "inspect", "-f", "{{.Spec.Name}} {{.Spec.Mode.Replicated.Replicas}}", *ids
        )
        assert (shown.returncode, shown.stdout.decode()) == (0, "talk 3\n"), shown.stderr.decode()
