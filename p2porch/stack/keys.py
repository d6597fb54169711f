"""Every key of the Compose specification and what p2porch does with it (pure data).

Owns the catalogue docs/stack.md mirrors: a key listed in a ``*_MAPPED`` tuple is implemented or mapped
by ``service.py``/``compose.py``; a key in an ``*_IGNORED`` map is accepted and ignored with one warning
giving the reason (as ``docker stack deploy`` prints "Ignoring unsupported options"); any other key is
an error ("unknown key"), as Compose's own schema validation does. Never does anything itself.
"""

from __future__ import annotations

_NOT_IN_SWARM = "not applied to cluster tasks (docker stack deploy ignores it too)"
_RESOURCES = "not supported: use deploy.resources (cpus, memory)"
_NETWORK = "every task is on the cluster network and reaches every service by name"

TOP_MAPPED = ("version", "name", "services", "networks", "volumes", "secrets", "configs", "include")
TOP_IGNORED = {"models": "AI models are not supported"}

SERVICE_MAPPED = (
    "image", "command", "entrypoint", "environment", "env_file", "labels", "ports", "volumes",
    "healthcheck", "deploy", "networks", "user", "working_dir", "stop_grace_period", "restart",
    "depends_on", "logging", "expose", "extra_hosts", "cap_add", "cap_drop", "hostname", "init",
    "stop_signal", "tmpfs", "ulimits", "sysctls", "shm_size", "read_only", "security_opt", "profiles",
    "extends", "build", "container_name", "secrets", "configs", "cpus", "mem_limit", "mem_reservation",
    "scale", "pids_limit", "devices", "network_mode", "links", "label_file", "volumes_from", "dns_opt",
    "group_add", "memswap_limit", "mem_swappiness", "pull_policy", "pid", "ipc", "uts", "privileged",
)  # fmt: skip
SERVICE_IGNORED = {
    "annotations": "container annotations are not passed to the engine",
    "attach": "deploys never attach to logs (use p2porch service logs)",
    "blkio_config": _RESOURCES,
    "cgroup": _NOT_IN_SWARM,
    "cgroup_parent": _NOT_IN_SWARM,
    "cpu_count": _RESOURCES,
    "cpu_percent": _RESOURCES,
    "cpu_period": _RESOURCES,
    "cpu_quota": _RESOURCES,
    "cpu_rt_period": _RESOURCES,
    "cpu_rt_runtime": _RESOURCES,
    "cpu_shares": _RESOURCES,
    "cpuset": _RESOURCES,
    "credential_spec": "Windows only",
    "develop": "development-time file watching is a docker compose feature",
    "device_cgroup_rules": _NOT_IN_SWARM,
    "dns": "tasks use the cluster DNS, which forwards other names to the node's resolvers",
    "dns_search": "tasks use the cluster DNS search domains",
    "domainname": _NOT_IN_SWARM,
    "external_links": _NETWORK,
    "gpus": "GPU reservations are not supported",
    "isolation": "Windows only",
    "mac_address": _NOT_IN_SWARM,
    "models": "AI models are not supported",
    "oom_kill_disable": _RESOURCES,
    "oom_score_adj": _RESOURCES,
    "platform": "each node pulls the image for its own platform",
    "post_start": "lifecycle hooks are not supported",
    "pre_stop": "lifecycle hooks are not supported",
    "provider": "a provider service is run by a docker compose plugin: it is not deployed",
    "pull_refresh_after": "a node pulls the image when it does not have it",
    "runtime": _NOT_IN_SWARM,
    "stdin_open": "tasks have no attached terminal",
    "storage_opt": _NOT_IN_SWARM,
    "tty": "tasks have no attached terminal",
    "use_api_socket": "the Docker socket is not given to tasks",
    "userns_mode": _NOT_IN_SWARM,
}

DEPLOY_MAPPED = (
    "endpoint_mode", "labels", "mode", "placement", "replicas", "resources", "restart_policy",
    "rollback_config", "update_config",
)  # fmt: skip
PLACEMENT_KEYS = ("constraints", "preferences", "max_replicas_per_node")
RESOURCES_KEYS = ("limits", "reservations")
LIMITS_MAPPED = ("cpus", "memory", "pids")
LIMITS_IGNORED: dict[str, str] = {}
RESERVATIONS_MAPPED = ("cpus", "memory")
RESERVATIONS_IGNORED = {
    "devices": "device reservations (GPUs) are not supported",
    "generic_resources": "generic resources are not supported",
}
RESTART_KEYS = ("condition", "delay", "max_attempts", "window")
UPDATE_KEYS = ("parallelism", "delay", "failure_action", "monitor", "max_failure_ratio", "order")
HEALTH_KEYS = ("test", "interval", "timeout", "retries", "start_period", "start_interval", "disable")
LOGGING_KEYS = ("driver", "options")
PORT_KEYS = ("target", "published", "host_ip", "protocol", "mode", "name", "app_protocol")
VOLUME_MOUNT_KEYS = (
    "type",
    "source",
    "target",
    "read_only",
    "bind",
    "volume",
    "tmpfs",
    "image",
    "consistency",
)
VOLUME_BIND_KEYS = ("propagation", "create_host_path", "selinux", "recursive")
VOLUME_VOLUME_KEYS = ("nocopy", "subpath", "labels")
VOLUME_TMPFS_KEYS = ("size", "mode")
DEPENDS_KEYS = ("condition", "restart", "required")
DEPENDS_CONDITIONS = ("service_started", "service_healthy", "service_completed_successfully")
SERVICE_NETWORK_KEYS = (
    "aliases", "ipv4_address", "ipv6_address", "link_local_ips", "priority", "mac_address",
    "driver_opts", "gw_priority", "interface_name",
)  # fmt: skip
SERVICE_FILE_REF_KEYS = ("source", "target", "uid", "gid", "mode")
ENV_FILE_KEYS = ("path", "required", "format")
EXTENDS_KEYS = ("service", "file")

TOP_VOLUME_KEYS = ("driver", "driver_opts", "external", "labels", "name")
TOP_NETWORK_KEYS = (
    "driver", "driver_opts", "attachable", "enable_ipv4", "enable_ipv6", "external", "ipam",
    "internal", "labels", "name",
)  # fmt: skip
TOP_SECRET_KEYS = (
    "file",
    "environment",
    "external",
    "name",
    "labels",
    "driver",
    "driver_opts",
    "template_driver",
)
TOP_CONFIG_KEYS = ("file", "environment", "content", "external", "name", "labels", "template_driver")
