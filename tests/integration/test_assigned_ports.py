"""``--publish 80`` on a real 3-node sandbox (``p4pb``): as Swarm, an ingress port the cluster assigns from
30000-32767, shown by ``service inspect`` (``.Endpoint.Ports``) and ``service ls``, answered on every
node's address, kept by ``service update``, freed by ``service rm``; a chosen port that collides with it
is refused. ``--publish mode=host,target=80``: the engine binds a random host port on the task's node.
Every test removes its services even when it fails; the sandbox goes with the module."""

from __future__ import annotations

import json
import urllib.request

from clusterkit import FAST_STOP, IMAGE, cli, cluster_fixture, containers, running_tasks, service, wait_for

from p2porch.sandbox.dockerd import docker

SUBNET = "10.95.0.0/24"
# a page naming the version (env V) and the node, on port 80
SERVE = (
    IMAGE,
    "sh",
    "-c",
    'mkdir -p /www && echo "v=$V $P2PORCH_NODE" > /www/index.html && exec httpd -f -p 80 -h /www',
)

cluster = cluster_fixture("p4pb", SUBNET)


def get(address: str, port: int) -> str:
    with urllib.request.urlopen(f"http://{address}:{port}/", timeout=3) as response:
        return response.read().decode().strip()


def ok(sb, *args: str) -> str:
    result = cli(sb, "n1", *args)
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout.decode()


def endpoint_ports(sb, name: str) -> list[dict]:
    return json.loads(ok(sb, "service", "inspect", name, "--format", "{{json .Endpoint.Ports}}"))


def assigned(sb, name: str) -> int:
    (port,) = endpoint_ports(sb, name)
    assert (port["TargetPort"], port["PublishMode"], port["Protocol"]) == (80, "ingress", "tcp"), port
    spec = json.loads(ok(sb, "service", "inspect", name, "--format", "{{json .Spec.EndpointSpec.Ports}}"))
    assert "PublishedPort" not in spec[0], spec  # the spec keeps none, as Swarm's (0: omitempty in its JSON)
    return int(port["PublishedPort"])


def test_publish_80_gets_a_port_of_the_range_on_every_node_kept_on_update_freed_on_rm(cluster) -> None:
    sb, nodes = cluster
    with service(sb, nodes, "auto", "-p", "80", "--env", "V=1", *FAST_STOP, *SERVE):
        port = assigned(sb, "auto")
        assert 30000 <= port <= 32767
        print(f"auto was assigned {port}")
        assert f"*:{port}->80/tcp" in ok(sb, "service", "ls")
        running_tasks(nodes[0], "auto", 1)
        for node in nodes:  # one node runs the task; every one answers
            page = wait_for(lambda n=node: get(n.address, port), 30, f"{node.name}:{port}")
            assert page.startswith("v=1 "), page
        # the ingress port binds nothing on the task's node: the NAT rules serve it
        for node in nodes:
            for found in containers(node, "auto"):
                assert docker(node.dockerd, "port", found["Id"]).stdout.decode().strip() == ""
        # a second service gets another port; a chosen port that collides with the assigned one is refused
        with service(sb, nodes, "other", "-p", "80", *FAST_STOP, *SERVE):
            assert assigned(sb, "other") not in (port, 0)
        taken = cli(sb, "n1", "service", "create", "-d", "--name", "clash", "-p", f"{port}:80", *SERVE)
        assert taken.returncode == 1, taken.stderr.decode()
        assert f"port '{port}' (tcp) is already in use by service 'auto'" in taken.stderr.decode()
        # an update keeps the port (and the new tasks answer on it)
        ok(sb, "service", "update", "-d", "--env-add", "V=2", "auto")
        assert assigned(sb, "auto") == port
        for node in nodes:
            wait_for(lambda n=node: get(n.address, port).startswith("v=2 "), 60, f"v=2 on {node.name}:{port}")
    # rm freed it: the next service is assigned the same lowest free port
    with service(sb, nodes, "next", "-p", "80", *FAST_STOP, *SERVE):
        assert assigned(sb, "next") == port


def test_host_mode_without_a_published_port_binds_a_random_host_port(cluster) -> None:
    sb, nodes = cluster
    with service(sb, nodes, "hostrand", "-p", "mode=host,target=80", "--env", "V=h", *FAST_STOP, *SERVE):
        (task,) = running_tasks(nodes[0], "hostrand", 1)
        node = next(n for n in nodes if n.name == task["node"])
        (found,) = containers(node, "hostrand")
        bindings = found["NetworkSettings"]["Ports"]["80/tcp"]
        host_port = int(bindings[0]["HostPort"])
        print(f"hostrand's task on {node.name} got host port {host_port}")
        assert host_port > 0
        assert wait_for(lambda: get(node.address, host_port), 30, "the task's host port").startswith("v=h ")
        # per task, not the service's: none in its JSON (0 is omitted, as Docker's)
        assert "PublishedPort" not in endpoint_ports(sb, "hostrand")[0]
