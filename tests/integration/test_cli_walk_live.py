"""The fourth CLI walk on a live 3-node cluster (``p4cl``, 10.95.4.0/24), what the unit tests cannot show:
``node ls --format '{{.TLSStatus}}'`` is ``Ready`` on every node from the key epochs the nodes publish in
gossip, before and after ``cluster rotate-keys``; every ``node`` command says Docker's ``No such node``
for an unknown node; an ingress port on a dnsrr service is refused on create, update and in a stack file
(exit 2, naming the port) and changes nothing."""

from __future__ import annotations

import json
from pathlib import Path

from clusterkit import IMAGE, cli, cli_json, cluster_fixture, wait_for

cluster = cluster_fixture("p4cl", "10.95.4.0/24")


def _tls(sb) -> list[str]:
    result = cli(sb, "n2", "node", "ls", "--format", "{{.Hostname}} {{.TLSStatus}}")
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout.decode().split("\n")[:-1]


def test_tls_status_follows_the_key_epoch_and_unknown_nodes_are_no_such_node(cluster) -> None:
    sb, nodes = cluster
    every_ready = ["n1 Ready", "n2 Ready", "n3 Ready"]
    wait_for(lambda: _tls(sb) == every_ready, 30, "TLSStatus Ready on every node")
    rotated = cli(sb, "n1", "cluster", "rotate-keys")
    assert rotated.returncode == 0, rotated.stderr.decode()
    wait_for(lambda: _tls(sb) == every_ready, 60, "TLSStatus Ready in the new key epoch")
    for argv in (["promote", "nosuch"], ["demote", "nosuch"], ["inspect", "nosuch"], ["ps", "nosuch"],
                 ["rm", "nosuch"], ["update", "--availability", "drain", "nosuch"]):  # fmt: skip
        result = cli(sb, "n1", "node", *argv)
        assert (result.returncode, result.stderr.decode()) == (1, "Error: No such node: nosuch\n")


def test_an_ingress_port_on_dnsrr_is_refused_everywhere_and_changes_nothing(cluster, tmp_path: Path) -> None:
    sb, nodes = cluster
    refused = "published with ingress mode can't be used with dnsrr mode"
    create = cli(sb, "n1", "service", "create", "-d", "--name", "rr", "--endpoint-mode", "dnsrr",
                 "--publish", "8080:80", IMAGE, "sleep", "3600")  # fmt: skip
    assert create.returncode == 2 and refused in create.stderr.decode()
    assert create.stderr.decode().startswith("p2porch: error: --publish: ")
    web = cli_json(sb, "n1", "service", "create", "-d", "--name", "web", "--publish", "8080:80",
                   IMAGE, "sleep", "3600")  # fmt: skip
    try:
        update = cli(sb, "n2", "service", "update", "-d", "--endpoint-mode", "dnsrr", "web")
        assert update.returncode == 2 and refused in update.stderr.decode()
        assert update.stderr.decode().startswith("p2porch: error: --publish: ")
        after = cli_json(sb, "n1", "service", "inspect", "web")
        assert after["version"] == web["version"] and after["spec"]["endpoint_mode"] == "vip"
        stack = tmp_path / "rr.yml"
        stack.write_text(
            f"services:\n  a:\n    image: {IMAGE}\n    deploy: {{endpoint_mode: dnsrr}}\n"
            "    ports: [{target: 80, published: 8081, mode: ingress}]\n"
        )
        deploy = cli(sb, "n1", "stack", "deploy", "-c", str(stack), "rr")
        assert (
            deploy.returncode == 2
            and f"services.a.ports[0]: port 8081:80/tcp {refused}" in deploy.stderr.decode()
        )
        assert [s["name"] for s in cli_json(sb, "n1", "service", "ls")] == ["web"]
    finally:
        assert cli(sb, "n1", "service", "rm", "web").returncode == 0


def test_dockers_node_paths_json_lists_and_refused_flags_on_a_live_cluster(cluster) -> None:
    """The h42 walk: ``node inspect --format`` reads Docker's node paths, ``--format json`` prints one
    object a row by Docker's names, and a Docker flag p2porch lacks is refused with the reason (exit 2)
    before anything is written."""
    sb, nodes = cluster
    paths = "{{.Status.State}} {{.Spec.Role}} {{.Description.Hostname}} {{.Status.Addr}}"
    inspect = cli(sb, "n2", "node", "inspect", "--format", paths, "self")
    assert (inspect.returncode, inspect.stdout.decode()) == (0, f"ready manager n2 {nodes[1].address}\n")
    listed = cli(sb, "n1", "node", "list", "--format", "json")
    assert listed.returncode == 0, listed.stderr.decode()
    rows = [json.loads(line) for line in listed.stdout.decode().splitlines()]
    assert sorted(r["Hostname"] for r in rows) == ["n1", "n2", "n3"]
    assert {r["Status"] for r in rows} == {"Ready"}  # Docker's PrettyPrint, as docker node ls --format json
    assert {r["Self"] for r in rows} == {True, False}  # a bool, as Docker's
    # Go's whole language (model/gotemplate.py): range, variables, if, Docker's split (a usage error before)
    ranged = "{{range $i, $part := split .Hostname `n`}}{{if $i}}node {{$part | printf `%q`}}{{end}}{{end}}"
    listed = cli(sb, "n1", "node", "ls", "--format", ranged)
    assert listed.returncode == 0, listed.stderr.decode()
    assert sorted(listed.stdout.decode().splitlines()) == ['node "1"', 'node "2"', 'node "3"']
    before = cli_json(sb, "n1", "network", "ls")
    refused = cli(sb, "n1", "network", "create", "--gateway", "10.0.0.1", "gw")
    assert refused.returncode == 2
    assert "--gateway: p2porch allocates addresses itself" in refused.stderr.decode()
    assert cli_json(sb, "n1", "network", "ls") == before
