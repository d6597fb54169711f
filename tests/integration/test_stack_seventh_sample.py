"""Shapes of the seventh real-world Compose sample deployed on a real one-node sandbox (docs/stack.md,
"Seventh sample"): Hyperledger Fabric's service named ``orderer.example.com`` that the peers reach by
that name, a dotted ``container_name`` (``db.internal``), and a ``provider:`` service (Compose 2.36+)
that is not deployed while the service depending on it runs. Names are asked with a trailing dot
(absolute, no search domain), as a resolver asks a name with dots first. The busybox image is tagged
with the file's image names (no registry).

One sandbox (``p2cp``, 10.54.0.0/16) for the module, removed even when a test fails.
"""

from __future__ import annotations

import json

from clusterkit import cli, cli_json, compose_sample_fixture, container_sh, stack_container
from clusterkit import wait_in_stack as wait_for

STACK = "sv"
ORDERER = "hyperledger/fabric-orderer:latest"
PEER = "hyperledger/fabric-peer:latest"

COMPOSE = f"""
networks:
  test: {{name: fabric_test}}
services:
  orderer.example.com:
    image: {ORDERER}
    container_name: orderer.example.com
    command: ["sh", "-c", "exec sleep 1d"]
    stop_grace_period: 1s
    networks: [test]
  peer0.org1.example.com:
    image: {PEER}
    container_name: db.internal
    command: ["sh", "-c", "exec sleep 1d"]
    stop_grace_period: 1s
    environment: [ORDERER_ADDRESS=orderer.example.com:7050]
    networks: [test]
    depends_on: [models]
  models:
    provider: {{type: model, options: {{model: ai/smollm2}}}}
"""


cluster = compose_sample_fixture("p2cp", "10.54.0.0/16", (ORDERER, PEER), {"compose.yaml": COMPOSE})


def addresses(output: str) -> list[str]:
    # each search domain that answers prints its addresses (a stack's name also answers under
    # ``<stack>.p2p``: docs/dns.md): the set of them, sorted
    return sorted({line.split()[-1] for line in output.splitlines()[2:] if line.startswith("Address")})


def test_dotted_names_resolve_as_asked_and_a_provider_service_is_skipped(cluster):
    sb, node, workdir = cluster
    result = cli(sb, "n1", "--json", "stack", "deploy", "-c", str(workdir / "compose.yaml"), STACK)
    assert result.returncode == 0, result.stderr.decode()
    assert b"services.models.provider (model): models is not deployed" in result.stderr
    assert sorted(s["short"] for s in json.loads(result.stdout)["services"]) == [
        "orderer.example.com",
        "peer0.org1.example.com",
    ]
    peer = wait_for(lambda: stack_container(node, "peer0.org1.example.com"), "a running peer container")
    orderer = wait_for(lambda: stack_container(node, "orderer.example.com"), "a running orderer container")

    def names_resolve() -> bool:
        by_service = addresses(container_sh(node, peer["Id"], "nslookup sv-orderer-example-com"))
        assert by_service, "the orderer's service name does not resolve yet"
        # absolute (trailing dot): no search domain; before, forwarded to the upstreams
        assert addresses(container_sh(node, peer["Id"], "nslookup orderer.example.com.")) == by_service
        own = addresses(container_sh(node, orderer["Id"], "nslookup sv-peer0-org1-example-com"))
        assert own and addresses(container_sh(node, orderer["Id"], "nslookup db.internal.")) == own
        assert addresses(container_sh(node, orderer["Id"], "nslookup peer0.org1.example.com.")) == own
        return True

    wait_for(names_resolve, "orderer.example.com and db.internal resolving as asked")


def test_stack_rm_removes_the_seventh_samples_stack(cluster):
    sb, _node, _workdir = cluster
    assert len(cli_json(sb, "n1", "stack", "rm", STACK)["removed"]) == 2
