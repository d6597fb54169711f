"""`service inspect` text: what a user needs to reach and check a service (ports and where they answer,
VIP, secrets by name only, env, limits)."""

from __future__ import annotations

from p2porch.cli.service_describe import describe_service


def view(**spec):
    base = {"image": "nginx:alpine", "command": ["httpd", "-f"], "publish": [], "env": {}}
    return {
        "id": "abc",
        "name": "web",
        "mode": "replicated",
        "running": 3,
        "desired": 3,
        "vip": "10.239.0.5",
        "spec": {**base, **spec},
        "pending": [],
    }


def test_inspect_shows_ports_with_where_they_answer_and_the_vip():
    text = describe_service(
        view(
            publish=[
                {"target": 80, "published": 8080, "protocol": "tcp"},
                {"target": 53, "published": 5353, "protocol": "udp", "mode": "host"},
                {"target": 9000, "published": None, "protocol": "tcp"},
            ]
        )
    )
    assert "Ports:     8080 -> 80/tcp (ingress: port 8080 of every node)" in text
    assert "Ports:     5353 -> 53/udp (host: on each task's node)" in text
    assert "9000/tcp (no published port" in text
    assert "VIP:       10.239.0.5" in text


def test_inspect_names_secrets_and_configs_never_values_and_shows_env_and_limits():
    ref = {"source": "db-password", "target": "pw", "uid": "70", "gid": "0", "mode": 0o400, "version": 2}
    text = describe_service(
        view(
            secrets=[ref],
            configs=[{**ref, "source": "app.conf", "target": "/app.conf"}],
            env={"LOG": "debug", "POSTGRES_PASSWORD": "hunter2", "API_TOKEN": "t0k", "EMPTY_KEY": ""},
            limit_memory_bytes=64 * 1024 * 1024,
        )
    )
    assert "Secrets:   db-password -> pw" in text
    assert "Configs:   app.conf -> /app.conf" in text
    assert "Env:       API_TOKEN=**** EMPTY_KEY= LOG=debug POSTGRES_PASSWORD=****" in text
    assert "hunter2" not in text and "t0k" not in text  # secret-looking names are masked
    assert "Limits:    64MiB" in text
    assert "Ports:" not in describe_service(view())


def test_ages_read_as_seconds_minutes_hours_or_days():
    from p2porch.cli.service_rows import ago

    now = 1_800_000_000.0
    assert ago(now - 42, now) == "42s ago"
    assert ago(now - 185, now) == "3m05s ago"
    assert ago(now - 5 * 3600 - 120, now) == "5h02m ago"
    assert ago(now - 3 * 86400 - 7, now) == "3d ago"
    assert ago(0, now) == "0s ago"


def test_cpu_limits_and_reservations_say_cpus_once():
    """`service inspect` printed "Limits:    0.2 CPUs CPU" (format_cpus already names the unit)."""
    text = describe_service(
        view(
            limit_cpu_nanos=200_000_000,
            limit_memory_bytes=64 * 1024 * 1024,
            reserve_cpu_nanos=1_000_000_000,
            reserve_memory_bytes=32 * 1024 * 1024,
        )
    )
    assert "Limits:    0.2 CPUs, 64MiB" in text
    assert "Reserved:  1 CPU, 32MiB" in text


def test_inspect_shows_the_update_and_rollback_policies():
    """The fourth user walk: a stack's ``update_config`` (start-first, rollback on failure) was nowhere
    in ``service inspect --pretty``; Docker's shows UpdateConfig and RollbackConfig."""
    update = {"parallelism": 1, "delay_s": 1.0, "order": "start-first", "failure_action": "rollback",
              "monitor_s": 3.0, "max_failure_ratio": 0.0}  # fmt: skip
    rollback = {"parallelism": 0, "delay_s": 0.0, "order": "stop-first", "failure_action": "pause",
                "monitor_s": 5.0, "max_failure_ratio": 0.25}  # fmt: skip
    text = describe_service(view(update=update, rollback=rollback))
    assert "Update policy: 1 at a time, delay 1s, start-first, on failure rollback, monitor 3s" in text
    assert "max failure ratio 0\n" in text.split("Update policy:", 1)[1]
    assert "Rollback policy: all at a time, delay 0s, stop-first, on failure pause, monitor 5s" in text
    assert "max failure ratio 0.25" in text.split("Rollback policy:", 1)[1]
    assert "Update policy" not in describe_service(view())  # a view without the policy: no line
