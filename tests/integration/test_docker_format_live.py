"""Docker's documented ``--format`` examples on a live 3-node cluster (``p8tm``, 10.77.0.0/24), printed as
docker/cli prints them: ``{{json .}}`` compact with sorted keys (a row's HTML escaped), ``table`` headed
by the template over the header names and aligned by Go's tabwriter (min 10, padding 3), the fields'
Docker values (``Running``, ``Ready``, ``Running 8 seconds ago``), ``version --format``; and a task's
``{{.Node.ID}}`` is its node's id (it printed the name), a global task's ``{{.Task.Slot}}`` too; docker/cli's
``{{.Label "k"}}`` method, ``service inspect``'s Docker structs (``.Spec.TaskTemplate.ContainerSpec.Mounts``,
``%T``), ``network inspect``'s ``.IPAM.Config``/``.Containers``/``.Peers`` and the hosts' platform."""

from __future__ import annotations

import json
import os
import re

from clusterkit import IMAGE, cli, cli_json, cluster_fixture, containers, running_tasks, service, wait_for

cluster = cluster_fixture("p8tm", "10.77.0.0/24")


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


def test_methods_structs_and_platforms_as_dockers(cluster) -> None:
    sb, nodes = cluster
    arch = os.uname().machine  # the sandbox's hosts share this kernel: docker info's Architecture
    out(sb, "network", "create", "--label", "env=prod", "--label", "project.version=1.2", "back")
    try:
        # docker network ls's placeholder: {{.Label "project.version"}}; its JSON rows are docker/cli's
        labelled = out(sb, "network", "ls", "--filter", "name=back", "--format", '{{.Name}} {{.Label "env"}}')
        assert labelled == "back prod\n"
        row = json.loads(out(sb, "network", "ls", "--filter", "name=back", "--format", "json"))
        assert sorted(row) == [
            "CreatedAt",
            "Driver",
            "ID",
            "IPv4",
            "IPv6",
            "Internal",
            "Labels",
            "Name",
            "Scope",
        ]
        args = ("--network", "back", "--mount", "type=volume,source=fmtdata,target=/data")
        env = ("--env", "ARCH={{.Node.Platform.Architecture}}", "--env", "OS={{.Node.Platform.OS}}")
        with service(sb, nodes, "fmt", *args, *env, IMAGE, "sleep", "3600"):
            (task,) = running_tasks(nodes[0], "fmt", 1)
            inspect = ("service", "inspect", "fmt", "--format")
            mounts = (
                "{{range .Spec.TaskTemplate.ContainerSpec.Mounts}}{{.Type}} {{.Source}}:{{.Target}}{{end}}"
            )
            assert out(sb, *inspect, mounts) == "volume fmtdata:/data\n"
            assert out(sb, *inspect, "{{json .Spec.TaskTemplate.RestartPolicy}}") == (
                '{"Condition":"any","Delay":5000000000,"MaxAttempts":0}\n'
            )
            assert (
                out(sb, *inspect, "{{printf `%T` .Spec.TaskTemplate.ContainerSpec}}")
                == "*swarm.ContainerSpec\n"
            )
            assert out(sb, *inspect, "{{range .Spec.TaskTemplate.Networks}}{{.Target}}{{end}}") == "back\n"
            # swarmkit's .Node.Platform: the task's host's, not constants
            host = next(n for n in nodes if n.name == task["node"])
            (found,) = wait_for(lambda: containers(host, "fmt") or None, 30, "fmt's container")
            values = dict(e.split("=", 1) for e in found["Config"]["Env"])
            assert (values["ARCH"], values["OS"]) == (arch, "linux")
            # docker network inspect: .IPAM.Config (each node's leased block), .Containers, .Peers
            net = ("network", "inspect", "back", "--format")
            subnets = out(sb, *net, "{{range .IPAM.Config}}{{.Subnet}} {{.Gateway}};{{end}}").strip()
            assert len(subnets.split(";")) == 4 and all(
                re.fullmatch(r"[\d.]+/\d+ [\d.]+", s) for s in subnets.split(";")[:3]
            )
            containers_text = out(sb, *net, "{{range .Containers}}{{.Name}} {{.IPv4Address}}{{end}}")
            assert containers_text.startswith("fmt.1.") and f"{task['address']}/" in containers_text
            assert out(sb, *net, "{{range .Peers}}{{.Name}}{{end}}") == f"{task['node']}\n"
        # docker node inspect: .Description.Platform, the engine's (gossip carries the other nodes')
        platform = "{{.Description.Platform.OS}}/{{.Description.Platform.Architecture}}"
        for node in nodes:
            wait_for(
                lambda node=node: (
                    out(sb, "node", "inspect", node.name, "--format", platform) == f"linux/{arch}\n"
                ),
                30,
                f"{node.name}'s platform in gossip",
            )
    finally:
        out(sb, "network", "rm", "back")
