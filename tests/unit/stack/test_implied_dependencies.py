"""The start order a stack deploys with and the ``depends_on`` ``stack config`` prints come from one list
(``stack/implied.py``): what ``links``, ``service:X`` namespaces and ``volumes_from`` imply, after the
service's own ``depends_on``, in compose-go's order. Before, ``printed.py`` derived it apart from the
deploy (links and volumes_from in another order, ``ipc``/``pid``/``uts``/``cgroup`` printed and never
waited for)."""

from __future__ import annotations

import textwrap

from p2porch.stack import load_stack
from p2porch.stack.implied import implied_dependencies

COMPOSE = """
services:
  db: {image: postgres}
  cache: {image: redis}
  files: {image: busybox, volumes: ["data:/data"]}
  metrics: {image: busybox}
  web:
    image: nginx
    depends_on: {cache: {condition: service_started}}
    links: ["db:database", web, "cache:c"]  # a link to no service is refused (test_compose_spec_rows.py)
    volumes_from: ["files:ro", "container:legacy", db]
    cgroup: "service:metrics"
  worker:
    image: busybox
    volumes_from: [files]
    pid: "service:db"
    ipc: "service:files"  # two services' namespaces: not joined (no task group), still waited for
    links: [files]
volumes:
  data: {}
"""


def test_the_deploy_waits_for_what_stack_config_prints() -> None:
    stack = load_stack("shop", textwrap.dedent(COMPOSE), environ={})
    printed = stack.model["services"]
    for service in stack.services:
        deploy = [d.service for d in service.depends_on]
        assert deploy == list(printed[service.short_name].get("depends_on", {})), service.short_name
    web = next(s for s in stack.services if s.short_name == "web")
    assert [d.service for d in web.depends_on] == ["cache", "db", "metrics", "files"]
    assert printed["worker"]["depends_on"] == {
        "files": {"condition": "service_started", "restart": True, "required": True},  # the link's, first
        "db": {"condition": "service_started", "restart": True, "required": True},
    }
    order = [s.short_name for s in stack.services]
    assert order.index("metrics") < order.index("web") and order.index("db") < order.index("worker")


def test_implied_dependencies_in_compose_go_order_each_once() -> None:
    conf = {
        "links": ["a:x", "me", "ghost"],
        "cgroup": "service:b",
        "network_mode": "service:c",
        "volumes_from": ["container:d", "a", "e:rw"],
    }
    got = implied_dependencies("me", conf, {"a", "b", "c", "d", "e", "me"})
    assert list(got.items()) == [("a", True), ("c", True), ("b", True), ("e", False)]
    assert implied_dependencies("me", {"links": "a"}, {"a"}) == {}  # malformed: refused by the mapping
