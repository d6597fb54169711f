"""How `service inspect` prints a service as text (pure formatting of the API's service view)."""

from __future__ import annotations

import re
import time
from typing import Any

from ..model import format_bytes, format_cpus
from .autoscale import autoscale_summary
from .group import group_lines
from .service_rows import job_progress_text
from .stats import autoscale_lines

SECRET_LOOKING_ENV = re.compile(r"PASS|SECRET|TOKEN|KEY|CREDENTIAL|PRIVATE|AUTH", re.IGNORECASE)


def shown_env_value(name: str, value: object) -> str:
    """An env value as the text view shows it: masked when its name looks like a secret's (inspect
    output lands in terminals and CI logs; ``--json`` prints the spec as stored; use secrets instead)."""
    return "****" if SECRET_LOOKING_ENV.search(name) and value not in ("", None) else str(value)


def _port_lines(ports: Any) -> list[str]:
    """One ``Ports:`` line per published port, saying where it answers."""
    out = []
    for port in ports:
        target = f"{port['target']}/{port.get('protocol', 'tcp')}"
        published, host_ip = port.get("published"), port.get("host_ip") or ""
        ingress = port.get("mode", "ingress" if published and not host_ip else "host") == "ingress"
        if published is None:
            where = f"{target} (no published port: Docker picks a host port on each task's node)"
        elif ingress:
            how = ", assigned by the cluster" if port.get("assigned") else ""
            where = f"{published} -> {target} (ingress: port {published} of every node{how})"
        else:
            where = f"{host_ip + ':' if host_ip else ''}{published} -> {target} (host: on each task's node)"
        out.append(f"Ports:     {where}")
    return out


def _pairs(mapping: Any) -> str:
    return " ".join(f"{k}={v}" for k, v in sorted((mapping or {}).items()))


def _duration(seconds: float) -> str:
    return f"{seconds:g}s"


def _policy_lines(spec: dict[str, Any]) -> list[str]:
    """The update and rollback policies (``docker service inspect --pretty``'s UpdateConfig and
    RollbackConfig), one line each."""
    lines = []
    for key, title in (("update", "Update policy"), ("rollback", "Rollback policy")):
        policy = spec.get(key)
        if not policy:
            continue
        batch = policy.get("parallelism", 1)
        delay = _duration(policy.get("delay_s", 0))
        lines.append(
            f"{title}: {'all' if batch == 0 else batch} at a time, delay {delay}"
            f", {policy.get('order', 'stop-first')}, on failure {policy.get('failure_action', 'pause')}, "
            f"monitor {_duration(policy.get('monitor_s', 5))}, max failure ratio "
            f"{policy.get('max_failure_ratio', 0):g}"
        )
    return lines


def _settings_lines(spec: dict[str, Any]) -> list[str]:
    """Labels, placement, restart policy, health check and engine options: what ``create`` was given
    beyond the image (``docker service inspect --pretty`` shows them; this text did not)."""
    lines = []
    if spec.get("service_labels"):
        lines.append(f"Labels:    {_pairs(spec['service_labels'])}")
    if spec.get("labels"):
        lines.append(f"Container labels: {_pairs(spec['labels'])}")
    if spec.get("max_replicas_per_node"):
        lines.append(f"Placement: at most {spec['max_replicas_per_node']} task(s) per node")
    restart = spec.get("restart") or {}
    if restart:
        attempts = restart.get("max_attempts") or 0
        window = f" in {_duration(restart['window_s'])}" if restart.get("window_s") else ""
        lines.append(
            f"Restart:   {restart.get('condition', 'any')}, delay {_duration(restart.get('delay_s', 0))}, "
            + (f"at most {attempts} attempt(s){window}" if attempts else "no attempt limit")
        )
    health = spec.get("health") or {}
    cmd = health.get("cmd") or []
    if cmd == ["NONE"]:
        lines.append("Health:    off (--no-healthcheck)")
    elif cmd:
        test = (
            cmd[1]
            if cmd[0] == "CMD-SHELL" and len(cmd) == 2
            else " ".join(cmd[1:] if cmd[0] == "CMD" else cmd)
        )
        lines.append(
            f"Health:    {test} (every {_duration(health.get('interval_s', 30))}, timeout "
            f"{_duration(health.get('timeout_s', 30))}, {health.get('retries', 3)} retries)"
        )
    lines.extend(_policy_lines(spec))
    options = dict(spec.get("container") or {})
    for key in ("user", "workdir"):
        if spec.get(key):
            options[key] = spec[key]
    if options:
        shown = [
            k.replace("_", "-") if v is True else f"{k.replace('_', '-')}={v}" for k, v in options.items()
        ]
        lines.append(f"Container: {', '.join(sorted(shown))}")
    return lines


def describe_service(s: dict[str, Any]) -> str:
    """The `service inspect` text: spec summary, job progress, group, networks, update and pending lines."""
    spec = s["spec"]
    lines = [
        f"ID:        {s['id']}",
        f"Name:      {s['name']}",
        f"Mode:      {s['mode']}",
        f"Replicas:  {s['running']}/{s['desired']}",
        f"Image:     {spec['image']}",
        f"Command:   {' '.join(spec.get('command') or []) or '(image default)'}",
    ]
    job = s.get("job")
    if job:
        lines[3] = f"Progress:  {job_progress_text(job)} (execution {job['iteration']})"
        if job.get("schedule"):
            tz = spec.get("schedule", {}).get("timezone", "UTC")
            lines.append(f"Schedule:  {job['schedule']} ({tz}), next tick {time.ctime(job['next_tick'])}")
            lines.append(f"Ticks:     {job['skipped_ticks']} skipped (forbid), {job['missed_ticks']} missed")
    lines.extend(group_lines(spec))
    if spec.get("constraints"):
        lines.append(f"Constraints: {', '.join(spec['constraints'])}")
    networks = [
        n["target"] + (f" (aliases {', '.join(n['aliases'])})" if n.get("aliases") else "")
        for n in spec.get("networks") or ()
    ]
    lines.append(f"Networks:  {', '.join(networks) or 'p2porch (default)'}")
    if s.get("vip"):
        lines.append(f"VIP:       {s['vip']} (the name {s['name']} resolves to it; tasks.{s['name']}: tasks)")
    lines.extend(_port_lines(s.get("endpoint_ports", spec.get("publish")) or ()))
    for kind in ("secrets", "configs"):
        refs = [f"{r['source']} -> {r['target']}" for r in spec.get(kind) or ()]
        if refs:
            lines.append(f"{kind.capitalize() + ':':<10} {', '.join(refs)}")
    if spec.get("env"):
        lines.append(
            f"Env:       {' '.join(f'{k}={shown_env_value(k, v)}' for k, v in sorted(spec['env'].items()))}"
        )
    reserved = [
        *([format_cpus(spec["reserve_cpu_nanos"])] if spec.get("reserve_cpu_nanos") else []),
        *([format_bytes(spec["reserve_memory_bytes"])] if spec.get("reserve_memory_bytes") else []),
    ]
    if reserved:
        lines.append(f"Reserved:  {', '.join(reserved)}")
    limits = [
        *([format_cpus(spec["limit_cpu_nanos"])] if spec.get("limit_cpu_nanos") else []),
        *([format_bytes(spec["limit_memory_bytes"])] if spec.get("limit_memory_bytes") else []),
    ]
    if limits:
        lines.append(f"Limits:    {', '.join(limits)}")
    lines.extend(_settings_lines(spec))
    status = s.get("update_status")
    if status:
        reason = f": {status['reason']}" if status.get("reason") else ""
        lines.append(f"Update:    {status.get('state', '?')}{reason}")
    if spec.get("autoscale"):
        lines.append(autoscale_summary(spec["autoscale"]))
    rebalance = s.get("rebalance", "off")
    if rebalance != "off" or s.get("moving"):
        lines.append(f"Rebalance: {rebalance}, {s.get('moving', 0)} task(s) moving")
    if s.get("autoscale_status"):
        lines.extend(autoscale_lines(s["autoscale_status"]))
    for p in s["pending"]:
        lines.append(f"Pending:   {p['count']} task(s): {p['explanation']}")
    return "\n".join(lines)
