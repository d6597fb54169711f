"""p2porch.sandbox: several p2porch hosts on one machine, a network namespace each (shell).

sandbox (:class:`~p2porch.sandbox.sandbox.Sandbox`: up, ls, exec, down; the entry point, used by
``p2porch sandbox`` and the integration tests), dockerd (one Docker daemon per host), system (ip,
nsenter and prerequisite checks). Needs root.
"""

__all__ = ["dockerd", "sandbox", "system"]
