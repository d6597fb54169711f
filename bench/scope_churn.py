"""Memory one node's DNS scopes hold after DNS scopes are created and dropped many times (JSON).

One ``ClientScopes`` over a zone of ``--services`` services of ``--replicas`` tasks (each on the
network ``back``, one client address per task). Each cycle adds a network with a service of
``--replicas`` tasks (a network alias on it) and a service linking to it (a task on that network: a
network scope and a link scope), updates the scopes, then removes them and updates again, as a daemon
does when a stack comes and goes. Printed: the bytes traced (tracemalloc, after a collection) above the
state before the first cycle, after each of ``--checkpoints`` cycles, and the fragments in the node's
``FragmentStore``; the names each cycle uses are new (a stack deployed under a new name).

    python bench/scope_churn.py                      # 200 cycles of 100-task services (seconds)
    python bench/scope_churn.py --replicas 500 --checkpoints 0,50,100
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from p2porch.dns.resolver import Resolver  # noqa: E402
from p2porch.dns.scope import ClientScopes, NetworkAlias, ScopeData  # noqa: E402
from p2porch.dns.zone import TaskEntry, ZoneData  # noqa: E402


def _tasks(prefix: str, count: int) -> list[TaskEntry]:
    """``count`` tasks at addresses ``<prefix>.x.y`` (``prefix``: two octets)."""
    return [TaskEntry(slot + 1, f"{prefix}.{slot // 250}.{slot % 250 + 2}") for slot in range(count)]


def base_world(services: int, replicas: int) -> tuple[ZoneData, ScopeData]:
    zone_services = {f"svc{i}": _tasks(f"10.{100 + i}", replicas) for i in range(services)}  # < 100
    clients = {t.address: frozenset({"back"}) for tasks in zone_services.values() for t in tasks}
    zone = ZoneData(domain="p2p", services=zone_services, nodes={"n1": "10.0.0.1"}, version=1)
    data = ScopeData(services_by_network={"back": frozenset(zone_services)}, clients=clients)
    return zone, data


def with_stack(zone: ZoneData, data: ScopeData, cycle: int, replicas: int) -> tuple[ZoneData, ScopeData]:
    """``zone`` and ``data`` with cycle ``cycle``'s network, service and linking service."""
    net, target, linker = f"net{cycle}", f"stack{cycle}-db", f"stack{cycle}-web"
    target_tasks = _tasks("10.200", replicas)  # one cycle's stack at a time: the addresses come back
    linker_tasks = [TaskEntry(1, "10.250.0.2")]
    services = {**zone.services, target: target_tasks, linker: linker_tasks}
    clients = {**data.clients, **{t.address: frozenset({net}) for t in target_tasks + linker_tasks}}
    return (
        ZoneData(domain="p2p", services=services, nodes=zone.nodes, version=zone.version + 1),
        ScopeData(
            services_by_network={**data.services_by_network, net: frozenset({target, linker})},
            aliases=(NetworkAlias(net, "db", target),),
            clients=clients,
            links={linker: (("database", target),)},
            linkers={linker_tasks[0].address: linker},
        ),
    )


def held() -> int:
    gc.collect()
    return tracemalloc.get_traced_memory()[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=20)
    parser.add_argument("--replicas", type=int, default=100)
    parser.add_argument("--checkpoints", default="0,50,100,200", help="cycles after which to measure")
    args = parser.parse_args()
    checkpoints = sorted({int(x) for x in args.checkpoints.split(",")})
    zone, data = base_world(args.services, args.replicas)
    tracemalloc.start(1)
    scopes = ClientScopes(Resolver(zone), Resolver)
    scopes.update(zone, data)
    store = scopes.default.fragments
    baseline = held()
    points = []
    t0 = time.process_time()
    for cycle in range(checkpoints[-1] + 1):
        if cycle in checkpoints:
            points.append(
                {
                    "cycles": cycle,
                    "held_above_baseline_kb": round((held() - baseline) / 1024, 1),
                    "store_fragments": len(store.fragments),
                    "scopes": scopes.scope_count,
                }
            )
        if cycle == checkpoints[-1]:
            break
        stacked, stacked_data = with_stack(zone, data, cycle, args.replicas)
        scopes.update(stacked, stacked_data)
        zone = ZoneData(domain="p2p", services=zone.services, nodes=zone.nodes, version=stacked.version + 1)
        scopes.update(zone, data)
    cpu = time.process_time() - t0
    tracemalloc.stop()
    print(
        json.dumps(
            {
                "benchmark": "scope_churn",
                "python": platform.python_version(),
                "services": args.services,
                "replicas": args.replicas,
                "points": points,
                "cpu_s_traced": round(cpu, 2),
                "loadavg": os.getloadavg()[0],
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
