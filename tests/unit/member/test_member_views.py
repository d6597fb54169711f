"""Adapters from cluster state to overlay peers and the DNS zone (pure)."""

from types import SimpleNamespace

from p2porch.member.overlay import PeerView
from p2porch.member.views import dns_zone, gateway_of, local_overlay_node, overlay_peer, overlay_peers
from p2porch.model import Node, PortPublish, Service, ServiceSpec, SubnetLease, Task
from p2porch.raft.state import ClusterState


def state() -> ClusterState:
    nodes = {
        "a": Node("a", "n1", "10.0.0.1", 7947, 7946),
        "b": Node("b", "n2", "10.0.0.2", 7947, 7946),
        "c": Node("c", "n3", "10.0.0.3", 7947, 7946, status="down"),
        "d": Node("d", "n4", "10.0.0.4", 7947, 7946),  # no lease yet
    }
    leases = {k: SubnetLease(k, f"10.240.{i}.0/24") for i, k in enumerate("abc")}
    services = {
        "s1": Service("s1", ServiceSpec(name="web", image="nginx", publish=(PortPublish(80),))),
    }
    tasks = {
        "t1": Task("t1", "s1", 1, "a", state="running", address="10.240.0.2"),
        "t2": Task("t2", "s1", 2, "b", state="running", address="10.240.1.2"),
        "t3": Task("t3", "s1", 3, "b", state="starting", address="10.240.1.3"),
        "t4": Task("t4", "s1", 4, "b", state="running", desired_state="shutdown", address="10.240.1.4"),
        "t5": Task("t5", "s1", 5, None, state="new"),
    }
    return ClusterState(
        cluster_id="x",
        domain="p2p",
        cluster_cidr="10.240.0.0/16",
        version=7,
        nodes=nodes,
        services=services,
        tasks=tasks,
        leases=leases,
    )


def test_overlay_peers_are_live_leased_other_nodes():
    s = state()
    assert [p.node_id for p in overlay_peers(s, "a")] == ["b"]
    assert overlay_peers(s, "a", frozenset({"b"})) == []
    assert [p.node_id for p in overlay_peers(s, "b")] == ["a"]
    local = local_overlay_node(s, "a")
    assert local is not None and local.subnet == "10.240.0.0/24" and local.underlay_addr == "10.0.0.1"
    assert local_overlay_node(s, "d") is None
    assert gateway_of("10.240.3.0/24") == "10.240.3.1"


def test_a_node_held_for_its_daemon_restart_stays_an_overlay_peer_while_gossip_calls_it_dead():
    """Its kernel keeps forwarding for its containers: its own published ports DNAT to tasks here, whose
    answers must reach it (the leader's own port lost requests while the others had dropped it)."""
    from dataclasses import replace

    base = state()
    held = replace(base, nodes={**base.nodes, "b": replace(base.nodes["b"], restart_until=40.0)})
    dead = frozenset({"b"})
    assert [p.node_id for p in overlay_peers(held, "a", dead)] == ["b"]
    assert overlay_peer(held, "b", "a", dead) == overlay_peer(base, "b", "a")
    assert overlay_peers(base, "a", dead) == []  # not held: a dead node is no peer
    down = replace(held, nodes={**held.nodes, "b": replace(held.nodes["b"], status="down")})
    assert overlay_peers(down, "a", dead) == []  # its hold ran out: down, no peer


def test_dns_zone_answers_only_running_tasks_that_should_run():
    zone = dns_zone(state(), ("10.0.0.1",))
    web = {t.slot: t for t in zone.services["web"]}
    assert set(web) == {1, 2, 3, 4}  # tasks without an address are left out
    assert [s for s, t in sorted(web.items()) if t.answerable] == [1, 2]
    assert web[1].ports[0].number == 80
    assert zone.nodes == {"n1": "10.0.0.1", "n2": "10.0.0.2", "n3": "10.0.0.3", "n4": "10.0.0.4"}
    assert zone.version == 7 and zone.nameservers == ("10.0.0.1",)


def test_a_node_held_for_its_daemon_restart_keeps_its_tasks_in_the_dns_answers():
    """Its containers run on through the daemon's restart and are reachable over the overlay: its tasks
    stay answered (member/held.py; before: out for the whole restart, a 1-replica service unresolvable).
    Held with its engine recorded unreachable, or down once the hold ran out, they leave."""
    from dataclasses import replace

    base = state()

    def answered(**node_fields: object) -> list[int]:
        nodes = {**base.nodes, "b": replace(base.nodes["b"], **node_fields)}  # type: ignore[arg-type]
        web = {t.slot: t for t in dns_zone(replace(base, nodes=nodes)).services["web"]}
        return [s for s, t in sorted(web.items()) if t.answerable]

    assert answered() == [1, 2]
    assert answered(restart_until=40.0, restart_incarnation=3) == [1, 2]
    assert answered(restart_until=40.0, engine_down_at=30.0) == [1]
    assert answered(status="down") == [1]


def traffic_state() -> ClusterState:
    from dataclasses import replace

    from p2porch.model import parse_port

    def spec(name: str, *ports: str, **kw: object) -> ServiceSpec:
        return ServiceSpec(name=name, image="x", publish=tuple(parse_port(p) for p in ports), **kw)  # type: ignore[arg-type]

    base = state()
    web = Service(
        "s1", spec("web", "8080:80", "mode=host,published=9000,target=90"), created_at=1.0, vip="10.239.0.9"
    )
    late = Service("s2", spec("copy", "8080:81", endpoint_mode="dnsrr"), created_at=2.0)
    api = Service("s3", spec("my-api", "53:53/udp", ingress_policy="local"), created_at=3.0, vip="10.239.0.4")
    tasks = dict(base.tasks)
    tasks["t6"] = Task("t6", "s1", 6, "b", state="running", address="10.240.1.6", health="unhealthy")
    tasks["t7"] = Task("t7", "s3", 1, "a", state="running", address="10.240.0.7")
    return replace(base, services={"s1": web, "s2": late, "s3": api}, tasks=tasks)


def test_traffic_inputs_keep_only_running_healthy_tasks_on_live_nodes():
    from p2porch.member.views import traffic_inputs

    assert traffic_inputs(traffic_state(), "d") is None  # no lease yet
    result = traffic_inputs(traffic_state(), "a")
    assert result is not None
    ports, vips, settings = result
    assert settings.local_subnet == "10.240.0.0/24" and settings.cluster_cidr == "10.240.0.0/16"
    by_port = {(p.protocol, p.published): p for p in ports}
    assert set(by_port) == {("tcp", 8080), ("udp", 53)}  # host-mode 9000 is not ingress
    web = by_port[("tcp", 8080)]
    assert web.target == 80  # the older service owns the port
    assert sorted((b.address, b.local) for b in web.backends) == [("10.240.0.2", True), ("10.240.1.2", False)]
    assert by_port[("udp", 53)].policy == "local"
    assert {v.vip: len(v.backends) for v in vips} == {"10.239.0.9": 2, "10.239.0.4": 1}
    # node b dead in gossip: its tasks leave every backend set
    ports, vips, _ = traffic_inputs(traffic_state(), "a", frozenset({"b"})) or ([], [], None)
    assert [b.address for b in {(p.protocol, p.published): p for p in ports}[("tcp", 8080)].backends] == [
        "10.240.0.2"
    ]


def test_a_held_node_dead_in_gossip_stays_a_backend_until_its_hold_ends():
    """What the member passes as ``unreachable`` (``held.data_path_out``): a held node's tasks stay in
    the ingress and VIP backends while gossip calls its daemon dead, and leave when the hold ends."""
    from dataclasses import replace

    from p2porch.member.held import data_path_out
    from p2porch.member.views import traffic_inputs

    base = traffic_state()
    s = replace(base, nodes={**base.nodes, "b": replace(base.nodes["b"], restart_until=40.0)})

    def web_backends(now: float) -> list[str]:
        ports, vips, _ = traffic_inputs(s, "a", data_path_out(s, {"b"}, now)) or ([], [], None)
        assert [len(v.backends) for v in vips if v.vip == "10.239.0.9"] == [len(ports[0].backends)]
        web = {(p.protocol, p.published): p for p in ports}[("tcp", 8080)]
        return sorted(b.address for b in web.backends)

    assert web_backends(39.9) == ["10.240.0.2", "10.240.1.2"]
    assert web_backends(40.0) == ["10.240.0.2"]


def test_tasks_get_discovery_variables_drain_and_only_host_ports():
    from dataclasses import replace

    from p2porch.member.views import agent_assignments, discovery_env

    s = traffic_state()
    env = discovery_env(s)
    assert env == {
        "MY_API_SERVICE_HOST": "10.239.0.4",
        "MY_API_SERVICE_PORT": "53",
        "MY_API_SERVICE_PORT_53_UDP": "53",
        "WEB_SERVICE_HOST": "10.239.0.9",
        "WEB_SERVICE_PORT": "80",
        "WEB_SERVICE_PORT_80": "80",
        "WEB_SERVICE_PORT_90": "90",
    }
    (t1,) = [a for a in agent_assignments(s, "a", "n1", "p2porch") if a.task_id == "t1"]
    assert t1.env["WEB_SERVICE_HOST"] == "10.239.0.9" and t1.drain_index == 0  # not asked to stop
    assert t1.ready_ports == (80,)  # reported running once it listens on its ingress target port
    # asked to stop (at state version 41): a load-balanced task drains until every node applied 41
    tasks = dict(s.tasks)
    tasks["t1"] = replace(s.tasks["t1"], desired_state="shutdown", version=41)
    s41 = replace(s, tasks=tasks)
    (stop,) = [a for a in agent_assignments(s41, "a", "n1", "p2porch") if a.task_id == "t1"]
    assert stop.drain_index == 41
    # then until its TCP connections on the target ports (and, behind a VIP, any port it listens on) ended
    assert stop.drain_ports == (80, 90) and stop.drain_listeners
    # a service with neither a VIP nor an ingress port (dnsrr, host ports only) is nobody's backend
    dnsrr = replace(
        s41.services["s1"], spec=replace(s41.services["s1"].spec, endpoint_mode="dnsrr", publish=())
    )
    s_dnsrr = replace(s41, services={**s41.services, "s1": dnsrr})
    (plain,) = [a for a in agent_assignments(s_dnsrr, "a", "n1", "p2porch") if a.task_id == "t1"]
    assert plain.drain_index == 0 and not plain.drain_listeners and plain.ready_ports == ()
    assert [(p.published, p.target) for p in t1.ports] == [(9000, 90)]  # ingress 8080 is not bound


def test_one_nodes_overlay_peer_is_its_part_of_the_whole_list():
    s = state()
    for self_id in "abcd":
        for unreachable in (frozenset(), frozenset({"b"})):
            whole = {p.node_id: p for p in overlay_peers(s, self_id, unreachable)}
            for node_id in [*"abcd", "gone"]:
                assert overlay_peer(s, node_id, self_id, unreachable) == whole.get(node_id)


def test_the_overlays_peer_view_names_nodes_gossip_declared_dead_or_alive_since():
    class Board:
        dead: set[str] = set()

        def unreachable_nodes(self) -> set[str]:
            return set(self.dead)

    s, board = state(), Board()
    view = PeerView(SimpleNamespace(snapshot=lambda: s), board, "a")  # type: ignore[arg-type]
    assert [p.node_id for p in view.all()] == ["b"]
    assert view.changed(["d"]) == {"d": None}  # no lease: not a peer
    board.dead = {"b"}
    assert view.changed([]) == {"b": None}  # dead in gossip since the last look: named without a commit
    assert view.changed([]) == {}
    board.dead = set()
    assert view.changed([]) == {"b": overlay_peers(s, "a")[0]}


def test_a_tasks_swarm_template_context_names_the_nodes_id_and_its_host_name():
    """swarmkit's ``template.Context``: ``{{.Node.ID}}`` is the node's id (it printed the node's name),
    ``{{.Node.Hostname}}`` its name; a global service's ``{{.Task.Slot}}`` is the node's id, as swarmkit's
    (its tasks have no slot), in ``{{.Task.Name}}`` too."""
    from dataclasses import replace

    from p2porch.agent.model import template_context
    from p2porch.member.views import agent_assignments
    from p2porch.model.templates import expand

    s = state()
    text = "{{.Node.ID}} {{.Node.Hostname}} {{.Task.Slot}} {{.Task.Name}} {{.Service.ID}} {{.Service.Name}}"
    (t2,) = [a for a in agent_assignments(s, "b", "n2", "p2porch") if a.task_id == "t2"]
    assert expand(text, template_context(t2)) == "b n2 2 web.2.t2 s1 web"
    spec = replace(s.services["s1"].spec, mode="global")
    global_state = replace(s, services={"s1": replace(s.services["s1"], spec=spec)})
    (t2,) = [a for a in agent_assignments(global_state, "b", "n2", "p2porch") if a.task_id == "t2"]
    assert expand(text, template_context(t2)) == "b n2 b web.b.t2 s1 web"
