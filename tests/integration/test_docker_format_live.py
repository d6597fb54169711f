"""Docker's documented ``--format`` examples on a live 3-node cluster (``p7tm``, 10.74.0.0/24), printed as
docker/cli prints them: ``{{json .}}`` compact with sorted keys (a row's HTML escaped), ``table`` headed
by the template over the header names and aligned by Go's tabwriter (min 10, padding 3), the fields'
Docker values (``Running``, ``Ready``, ``Running 8 seconds ago``), ``version --format``; and a task's
``{{.Node.ID}}`` is its node's id (it printed the name), a global task's ``{{.Task.Slot}}`` too."""

from __future__ import annotations

import json
import re

from clusterkit import IMAGE, cli, cli_json, cluster_fixture, containers, running_tasks, service, wait_for

cluster = cluster_fixture("p7tm", "10.74.0.0/24")


def out(sb, *argv: str) -> str:
    result = cli(sb, "n1", *argv)
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout.decode()


def test_dockers_list_examples_print_as_dockers(cluster) -> None:
    sb, nodes = cluster
    ports = ("--publish", "8090:80", "--publish", "mode=host,target=81,published=8091")
    with service(sb, nodes, "redis", "--replicas", "2", *ports, IMAGE, "httpd", "-f", "-p", "80"):
        running_tasks(nodes[0], "redis", 2)
        # docker service ls --format "{{.ID}}: {{.Mode}} {{.Replicas}}"
        listed = out(sb, "service", "ls", "--format", "{{.ID}}: {{.Mode}} {{.Replicas}}")
        assert re.fullmatch(r"[0-9a-f]{12}: replicated 2/2\n", listed)
        # docker service ls --format json: compact, keys sorted, the row's HTML escaped, ingress ports only
        row = out(sb, "service", "ls", "--format", "json").strip()
        assert row.startswith('{"ID":"') and '"Mode":"replicated","Name":"redis"' in row
        assert '"Ports":"*:8090-\\u003e80/tcp"' in row and json.loads(row)["Replicas"] == "2/2"
        # table: the header is the template over the header names, Docker's header functions keep it
        template = "table {{upper .Name}}\\t{{.DesiredState}}\\t{{.CurrentState}}"
        table = out(sb, "service", "ps", "--format", template, "redis").splitlines()
        assert table[0] == "NAME      DESIRED STATE   CURRENT STATE"
        assert all(re.fullmatch(r"REDIS\.[12] {3}Running {9}Running .* ago", line) for line in table[1:])
        assert "*:8091->81/tcp" in out(sb, "service", "ps", "--format", "{{.Ports}}", "redis")
    nodes_json = [json.loads(line) for line in out(sb, "node", "ls", "--format", "json").splitlines()]
    assert {(n["Status"], n["Availability"]) for n in nodes_json} == {("Ready", "Active")}
    assert [n["Self"] for n in nodes_json].count(True) == 1
    versions = out(sb, "version", "--format", "{{.Server.Version}} {{.Client.Version}}").split()
    assert versions[0] == versions[1]
    assert json.loads(out(sb, "info", "--format", "{{json .Cluster}}"))["nodes"] == 3


def test_a_tasks_node_id_template_is_its_nodes_id(cluster) -> None:
    sb, nodes = cluster
    ids = {n["name"]: n["id"] for n in cli_json(sb, "n1", "node", "ls")}
    env = ("--env", "NID={{.Node.ID}}", "--env", "HN={{.Node.Hostname}}", "--env", "SLOT={{.Task.Slot}}")
    with service(sb, nodes, "tpl", "--mode", "global", *env, IMAGE, "sleep", "3600"):
        running_tasks(nodes[0], "tpl", 3)
        for node in nodes:
            (found,) = wait_for(lambda node=node: containers(node, "tpl") or None, 30, f"tpl on {node.name}")
            values = dict(e.split("=", 1) for e in found["Config"]["Env"])
            assert (values["NID"], values["HN"], values["SLOT"]) == (
                ids[node.name],
                node.name,
                ids[node.name],
            )
