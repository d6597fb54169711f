"""Constructs of the twenty-second real-world sample (docs/stack.md, "Twenty-second sample"), read key by
key against what Compose and Docker make of them: eBPF profilers and monitoring agents in the host's PID
namespace (``pid: host``: ignored before, so they saw their own container's processes only), an inference
server in the host's IPC namespace, images refreshed daily (``pull_policy: daily``: read as ``missing``
before), a kitchen-sink file of the namespace keys, two host-network services, a restore override adding
FUSE, a sidecar in an intake's namespace and a host-network agent whose port the file declares nowhere."""

from __future__ import annotations

from pathlib import Path

from p2porch.agent.dockerspec import engine_options
from p2porch.stack.source import stack_source

CORPUS = Path(__file__).parent / "corpus"


def corpus(name: str, profiles: tuple[str, ...] = ()):
    base = CORPUS / name
    listed = base / "files.txt"
    main = next(f for f in ("compose.yaml", "docker-compose.yml") if (base / f).exists())
    files = listed.read_text().split() if listed.exists() else [main]
    return stack_source([str(base / f) for f in files], environ={"HOME": "/home/user"}).load("x")


def specs(definition) -> dict[str, dict]:
    return {s.short_name: s.spec for s in definition.services}


def test_the_profilers_run_in_their_nodes_pid_namespace():
    alloy = specs(corpus("alloy-ebpf-pid-host"))["alloy"]
    assert alloy["container"] == {"pid_mode": "host", "privileged": True}  # privileged: honoured (h50priv)
    assert engine_options(alloy["container"])[1] == {"PidMode": "host", "Privileged": True}
    definition = corpus("otel-ebpf-profiler")
    profiler = specs(definition)["profiler"]
    assert profiler["container"] == {"hostname": "ebpf-profiler", "pid_mode": "host", "privileged": True}
    assert {m["target"]: m["readonly"] for m in profiler["mounts"]}["/proc"] is True
    warnings = "\n".join(definition.warnings)
    assert "ignoring privileged" not in warnings and "ignoring pid" not in warnings


def test_the_kitchen_sinks_namespaces_and_the_keys_ignored_beside_them():
    definition = corpus("compose-kitchen-namespaces")
    api = specs(definition)["api"]
    assert {k: api["container"][k] for k in ("pid_mode", "ipc_mode", "uts_mode")} == dict.fromkeys(
        ("pid_mode", "ipc_mode", "uts_mode"), "host"
    )
    assert api["replicas"] == 2 and api["container"]["groups"] == ["video", "1000"]
    assert api["container"]["devices"] == ["/dev/fuse:/dev/fuse:rwm"]
    assert {m["target"]: m["readonly"] for m in api["mounts"]}["/data"] is True  # volumes_from redis:ro
    warnings = "\n".join(definition.warnings)
    for key in ("cgroup", "cpu_shares", "domainname", "userns_mode", "platform"):
        assert f"ignoring {key} (service api)" in warnings
    assert (
        "ignoring pid" not in warnings and "ignoring ipc" not in warnings and "ignoring uts" not in warnings
    )


def test_an_inference_server_shares_its_nodes_ipc_namespace():
    definition = corpus("vllm-ipc-host")
    qwen = specs(definition)["qwen"]
    assert qwen["container"] == {
        "hostname": "inference-server",
        "shm_size_bytes": 32 * 1024**3,
        "ipc_mode": "host",
    }
    assert qwen["command"] == ["--model", "nvidia/Qwen3.6-27B-NVFP4", "--served-model-name", "qwen3.6-27b"]
    assert qwen["networks"][0]["target"] == "development-network"  # external: looked up, never created
    assert {m["target"]: m["source"] for m in qwen["mounts"]}["/root/.cache/huggingface"] == (
        "/home/user/.cache/huggingface"
    )


def test_images_refreshed_daily_keep_their_policy():
    mc = corpus("minecraft-pull-daily")
    assert specs(mc)["mc"]["container"] == {"pull_policy": "daily"}
    assert not any("pull_policy" in w for w in mc.warnings)
    assert any("ignoring tty (service mc)" in w for w in mc.warnings)
    comfy = corpus("comfyui-pull-daily")
    comfyui = specs(comfy)["comfyui"]
    assert comfyui["image"] == "yanwk/comfyui-boot:cu130-megapak-pt211"  # build: ignored beside image
    assert comfyui["container"] == {
        "init": True,
        "security_opt": ["label=disable", "seccomp=unconfined"],
        "pull_policy": "daily",
    }


def test_two_host_network_services_and_a_restore_override():
    homebridge = corpus("homebridge-ha-host")
    by_name = specs(homebridge)
    for short in ("homebridge", "ha-companion"):
        assert by_name[short]["networks"] == [{"target": "host", "aliases": []}]
        assert by_name[short]["endpoint_mode"] == "dnsrr"
    assert [s.short_name for s in homebridge.services] == ["homebridge", "ha-companion"]
    assert by_name["ha-companion"]["env"]["HA_PEER_IP"] == ""
    assert by_name["ha-companion"]["entrypoint"][:2] == ["sh", "-c"]
    borg = specs(corpus("borgmatic-restore-override"))["borgmatic"]
    assert borg["command"] == ["/bin/sh"] and borg["stop_grace_period_s"] == 600
    assert borg["container"]["devices"] == ["/dev/fuse:/dev/fuse:rwm"]
    assert borg["container"]["cap_add"] == ["SYS_ADMIN"]
    assert borg["container"]["log_driver"] == "local"
    assert {m["target"] for m in borg["mounts"]} >= {"/mnt/source", "/restore"}


def test_a_sidecar_in_the_intakes_namespace_and_an_agent_with_an_undeclared_port():
    intake = specs(corpus("fake-datadog-sidecar"))["fake-datadog"]
    assert intake["sidecars"] == [{"name": "mongo", "image": "mongo:5.0"}]
    assert [p["published"] for p in intake["publish"]] == [8080, 27017]
    beszel = corpus("beszel-agent-host")
    agent = specs(beszel)["beszel-agent"]
    assert agent["networks"] == [{"target": "host", "aliases": []}] and agent["publish"] == []
    assert agent["env"]["PORT"] == "45876"  # bound on the node, declared in no ports: nor expose:
    assert specs(beszel)["beszel"]["container"] == {"extra_hosts": ["host.docker.internal:host-gateway"]}
