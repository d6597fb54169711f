"""A global task that fails on its node is restarted there, in its own slot (cluster simulator).

Found on the sandbox (`service create --mode global --publish published=8082,target=80,mode=host` with
8082 taken on one node): each restart was first left pending with no node (the failed task's host port
still counted as held on the only node it may use), then shut down as "global: not eligible", and a new
slot was made; `service ps` showed a phantom pending task and a new task name per attempt.
"""

from p2porch.config import load_config
from p2porch.model import DesiredState, TaskState
from p2porch.testing.cluster_sim import ClusterSim
from p2porch.testing.fake_engine import Behaviour

HOST_PORT = [{"published": 8082, "target": 80, "mode": "host"}]


def test_a_failing_global_task_with_a_host_port_restarts_on_its_node_in_its_slot():
    sim = ClusterSim(7, config=load_config())
    sim.add_nodes(3)
    sim.nodes["n2"].engine.behaviours["app:1"] = Behaviour(start_error="port is already allocated")
    sim.create_service("hp", mode="global", publish=HOST_PORT)
    sim.run_for(20.0)
    every = sim.tasks("hp", desired=None)
    on_n2 = [t for t in every if sim.name_of(t.node_id) == "n2"]
    assert len(on_n2) >= 3, sim.timeline()  # it was restarted (restart delay 5 s, then backing off)
    assert {t.slot for t in on_n2} == {on_n2[0].slot}, sim.timeline()  # one slot for n2, every attempt
    assert [t for t in every if t.node_id is None] == [], sim.timeline()  # no phantom pending task
    assert all(t.error == "port is already allocated" for t in on_n2 if t.state == TaskState.FAILED)
    assert sorted(sim.placement("hp")) == ["n1", "n3"]
    wanted = [t for t in every if t.desired_state == DesiredState.RUNNING]
    assert sorted(sim.name_of(t.node_id) for t in wanted) == ["n1", "n2", "n3"]
