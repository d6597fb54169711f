"""p2porch.agent: the node-local agent that runs this node's tasks through the Docker Engine.

Pure: model (values), plan (reconcile decisions), dockerspec (Docker JSON translation), executor
(protocol). Shell: docker_executor (docker SDK in threads), worker (trio loop). Entry point:
:func:`p2porch.agent.worker.run_agent`, started by :mod:`p2porch.member.agent`. See docs/agent.md.
"""

__all__ = ["docker_executor", "dockerspec", "executor", "model", "plan", "worker"]
