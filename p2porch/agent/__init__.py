"""p2porch.agent: the node-local agent that runs this node's tasks through the Docker Engine.

Pure: model (values), plan (reconcile decisions), dockerspec (Docker JSON translation), executor
(protocol). Shell: docker_executor (docker SDK in threads), worker (trio loop). See docs/agent.md.
"""
