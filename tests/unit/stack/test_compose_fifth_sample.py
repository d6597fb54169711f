"""Constructs of the fifth real-world sample (docs/stack.md, "Fifth sample"), each reproduced by a
minimal hand-written file: link aliases, a Compose service named ``node``, and a network or volume
``name:`` left empty by an unset variable."""

from __future__ import annotations

from p2porch.control.stack_ops import parse_deploy_body
from p2porch.stack.names import service_name

from .compose_text import load, refusal, spec_of


def _aliases(definition, short: str) -> dict[str, list[str]]:
    return {n["target"]: n["aliases"] for n in spec_of(definition, short)["networks"]}


def test_a_link_alias_resolves_to_the_linked_service():
    """``links: [elasticsearch:es, dynomite:dyno1]`` with ``url=es:9300`` (a workflow engine's file):
    Compose resolves ``es`` from the linking service; it was ignored ("reaches every service by name"),
    so the application looked up a name nothing answered."""
    definition = load(
        """
        services:
          server:
            image: server
            environment: [es_url=es:9300]
            links: [elasticsearch:es, dynomite:dyno1, cache]
          elasticsearch:
            image: elasticsearch:2.4
          dynomite:
            image: dynomite
          cache:
            image: redis
        """
    )
    # the links are the linking service's own (only its tasks resolve them), no network alias of anyone's
    assert spec_of(definition, "server")["links"] == ["app-elasticsearch:es", "app-dynomite:dyno1"]
    for short in ("elasticsearch", "dynomite", "cache", "server"):
        assert _aliases(definition, short) == {"app_default": []}  # a plain link adds nothing
    assert "links" not in spec_of(definition, "elasticsearch")
    assert not [w for w in definition.warnings if "links" in w]


def test_a_link_needs_a_network_the_two_services_share():
    definition = load(
        """
        services:
          web:
            image: web
            networks: [front, back]
            links: ["db:mysql"]
          db:
            image: mysql
            networks: [back, admin]
        networks: {front: {}, back: {}, admin: {}}
        """
    )
    assert spec_of(definition, "web")["links"] == ["app-db:mysql"]
    assert _aliases(definition, "db") == {"app_back": [], "app_admin": []}


def test_link_aliases_that_cannot_resolve_are_named_in_a_warning():
    definition = load(
        """
        services:
          web:
            image: web
            networks: [front]
            links: ["db:database", "cache:db", "api:backend"]
          api:
            image: api
            links: ["db:database"]
          db:
            image: postgres
            networks: [back]
          cache:
            image: redis
            networks: [front]
        networks: {front: {}, back: {}}
        """
    )
    warnings = [w for w in definition.warnings if "links" in w]
    assert warnings == [
        "ignoring services.web.links[0] (db:database): web and db share no network, so 'database' "
        "cannot resolve",
        "ignoring services.web.links[1] (cache:db): 'db' is the name of another service of the stack",
        "ignoring services.web.links[2] (api:backend): web and api share no network, so 'backend' "
        "cannot resolve",
        "ignoring services.api.links[0] (db:database): api and db share no network, so 'database' "
        "cannot resolve",
    ]
    assert _aliases(definition, "cache") == {"app_front": []}
    assert "links" not in spec_of(definition, "web") and "links" not in spec_of(definition, "api")


def test_two_services_may_link_one_alias_to_different_services():
    """Tinode's two exporters each link ``tinode-N:tinode.host``: each sees its own target (a Compose link
    is the linking container's alone). As a network alias of the target, the second was dropped."""
    definition = load(
        """
        services:
          a:
            image: a
            links: ["db1:db"]
          b:
            image: b
            links: ["db2:db"]
          db1: {image: postgres}
          db2: {image: postgres}
        """
    )
    assert spec_of(definition, "a")["links"] == ["app-db1:db"]
    assert spec_of(definition, "b")["links"] == ["app-db2:db"]
    assert _aliases(definition, "db1") == _aliases(definition, "db2") == {"app_default": []}
    assert not [w for w in definition.warnings if "links" in w]


def test_one_service_linking_one_alias_to_two_services_keeps_the_first():
    definition = load(
        """
        services:
          a:
            image: a
            links: ["db1:db", "db2:db", "db1:db"]
          db1: {image: postgres}
          db2: {image: postgres}
        """
    )
    assert spec_of(definition, "a")["links"] == ["app-db1:db"]
    assert [w for w in definition.warnings if "links" in w] == [
        "ignoring services.a.links[1] (db2:db): 'db' already links to db1"
    ]


def test_links_must_be_a_list_of_strings():
    assert "services.web.links" in refusal("services:\n  web:\n    image: w\n    links: db\n")


def test_a_service_named_node_is_accepted():
    """``node:`` (a Laravel stack's Node.js build service; a common name): Compose and Swarm accept it,
    p2porch refused it as reserved. Its zone name is ``node.<stack>``, which collides with nothing
    (node names are ``<node>.node``); ``tasks`` stays reserved (``tasks.<stack>`` is the task list of
    a service named like the stack)."""
    definition = load("services:\n  node:\n    image: node:20\n    command: yarn run production\n")
    assert spec_of(definition, "node")["name"] == "app-node"
    assert service_name("app", "node") == "app-node"
    sent, _ = parse_deploy_body("app", {"services": [{"short": "node", "spec": spec_of(definition, "node")}]})
    assert [s.short_name for s in sent.services] == ["node"]  # the daemon accepts it too
    assert "services.tasks: 'tasks' is reserved" in refusal("services:\n  tasks:\n    image: x\n")


def test_an_empty_network_name_is_the_default_name():
    """``name: ${PROXY_DOCKER_NETWORK}`` with the variable unset (a Traefik Swarm stack): Compose and Swarm
    read an empty name as no name (``<project>_<key>``); p2porch refused it, then also reported the
    service's network as undeclared."""
    definition = load(
        """
        services:
          traefik:
            image: traefik
            networks: [proxy]
        networks:
          proxy:
            name: ${PROXY_DOCKER_NETWORK}
          legacy:
            external:
              name: ""
        """
    )
    assert [(n.key, n.name) for n in definition.networks] == [("proxy", "app_proxy")]
    assert spec_of(definition, "traefik")["networks"] == [{"target": "app_proxy", "aliases": []}]


def test_an_empty_volume_name_is_the_default_name_not_an_anonymous_volume():
    """``volumes: {workspace: {name: ${WORKSPACE_DOCKER_MOUNT}}}`` (a data platform's file, without its
    ``.env``): Compose and Swarm use ``<project>_workspace``; p2porch mounted an empty source, an
    anonymous volume, a new empty one for every task, with no word beyond the unset variable."""
    definition = load(
        """
        services:
          worker:
            image: worker
            volumes: ["workspace:/tmp/workspace", "data:/data"]
        volumes:
          workspace:
            name: ${WORKSPACE_DOCKER_MOUNT}
          data:
            name: ""
            external: true
        """
    )
    assert [(m["source"], m["target"]) for m in spec_of(definition, "worker")["mounts"]] == [
        ("app_workspace", "/tmp/workspace"),
        ("data", "/data"),
    ]
