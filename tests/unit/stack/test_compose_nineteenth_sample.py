"""Constructs of the nineteenth real-world sample (docs/stack.md, "Nineteenth sample"), and the redeploy of a
stack whose services wait for a dependency (``depends_on`` conditions): only the tasks of the dependency's
current spec count (and the sample's shapes, checked key by key against what Compose makes of them). On a
redeploy that updated a migration job, its previous run completed long ago and used
to satisfy ``service_completed_successfully`` at once, so the app rolled out before the new migration ran
(``docker compose up`` waits for the recreated container)."""

from __future__ import annotations

from pathlib import Path

from p2porch.stack.rollout import dependency_ready, deploy_waves
from p2porch.stack.source import stack_source

from .compose_text import load, spec_of

CORPUS = Path(__file__).parent / "corpus"

DONE = {
    "service": "s-migrate",
    "desired_state": "shutdown",
    "state": "complete",
    "exit_code": 0,
    "up_to_date": True,
}
OLD_DONE = {**DONE, "up_to_date": False}
NEW_RUNNING = {**DONE, "desired_state": "running", "state": "running", "exit_code": None}
OLD_RUNNING = {**NEW_RUNNING, "up_to_date": False}


def test_a_redeploy_waits_for_the_updated_dependencys_own_run_not_its_previous_one() -> None:
    # the migration's image changed: its old task completed, the new one runs (or is not created yet)
    for condition in ("service_completed_successfully", "service_started"):
        assert not dependency_ready("s-migrate", condition, [OLD_DONE], 1), condition
    assert not dependency_ready("s-migrate", "service_completed_successfully", [OLD_DONE, NEW_RUNNING], 1)
    assert dependency_ready("s-migrate", "service_completed_successfully", [OLD_DONE, DONE], 1)
    assert dependency_ready("s-migrate", "service_started", [OLD_DONE, NEW_RUNNING], 1)


def test_a_replaced_task_still_running_or_healthy_satisfies_nothing() -> None:
    healthy = {**OLD_RUNNING, "health": "healthy"}
    assert not dependency_ready("s-migrate", "service_healthy", [healthy], 1)
    assert not dependency_ready("s-migrate", "service_started", [OLD_RUNNING], 1)
    starting = {**NEW_RUNNING, "health": "starting"}
    assert not dependency_ready("s-migrate", "service_healthy", [healthy, starting], 1)
    assert dependency_ready("s-migrate", "service_healthy", [healthy, {**starting, "health": "healthy"}], 1)


def test_an_unchanged_dependencys_earlier_run_still_holds() -> None:
    # not rewritten by the redeploy: its tasks are of the current spec, and a done job is not run again
    assert dependency_ready("s-migrate", "service_completed_successfully", [DONE], 1)
    row = {k: v for k, v in DONE.items() if k != "up_to_date"}  # a daemon whose rows do not say
    assert dependency_ready("s-migrate", "service_completed_successfully", [row], 1)


def test_a_jobs_earlier_execution_counts_for_nothing() -> None:
    first = {**DONE, "job_iteration": 1}
    assert dependency_ready("s-migrate", "service_completed_successfully", [first], 1, iteration=1)
    # an update that reran the job without changing its template: execution 2 is what the app waits for
    assert not dependency_ready("s-migrate", "service_completed_successfully", [first], 1, iteration=2)
    second = {**first, "job_iteration": 2}
    assert dependency_ready("s-migrate", "service_completed_successfully", [first, second], 1, iteration=2)


def corpus(app: str, environ: dict[str, str] | None = None):
    base = CORPUS / app
    listed = base / "files.txt"
    files = listed.read_text().split() if listed.exists() else ["docker-compose.yml"]
    if (base / "docker-compose.override.yml").exists():
        files.append("docker-compose.override.yml")
    return stack_source([str(base / f) for f in files], environ=environ or {}).load("x")


def test_mlflows_one_shot_bucket_and_its_dotenv_map_as_compose_reads_them() -> None:
    definition = corpus("mlflow-one-shot-bucket")
    specs = {s.short_name: s.spec for s in definition.services}
    assert [w.wait_for for w in deploy_waves(definition)] == [
        (),
        (("x-storage", "service_healthy"),),
        (
            ("x-create-bucket", "service_completed_successfully"),
            ("x-postgres", "service_healthy"),
            ("x-storage", "service_healthy"),
        ),
    ]
    assert specs["create-bucket"]["restart"]["condition"] == "none"  # restart: "no"
    # a .env value interpolating the .env's earlier variables
    assert (
        specs["mlflow"]["env"]["MLFLOW_BACKEND_STORE_URI"]
        == "postgresql://mlflow:mlflow@postgres:5432/mlflow"
    )
    assert specs["storage"]["health"]["cmd"] == [
        "CMD-SHELL",
        'curl -s http://127.0.0.1:9000/health | grep -q \'"status":"ok"\'',  # '' in a single-quoted scalar
    ]
    entrypoint = specs["create-bucket"]["entrypoint"]  # the folded `>` text split as a shell would
    assert entrypoint[:2] == ["/bin/sh", "-c"] and entrypoint[2].startswith("\n  set -e;\n  if aws")
    assert "--bucket mlflow 2>/dev/null; then" in entrypoint[2]
    assert specs["mlflow"]["networks"] == [{"target": "mlflow-network", "aliases": ["mlflow-server"]}]
    assert specs["mlflow"]["publish"] == [{"target": 5000, "published": 5000, "protocol": "tcp"}]


def test_dapr_sidecars_of_the_override_file_join_their_apps_task() -> None:
    base = CORPUS / "dapr-sidecars-override"
    specs = {s.short_name: s.spec for s in corpus("dapr-sidecars-override").services}
    assert "basket-api-dapr" not in specs
    basket = specs["basket-api"]
    assert basket["image"] == "eshopdapr/basket.api:latest"  # ${REGISTRY:-eshopdapr}/...:${TAG:-latest}
    assert basket["env"]["IdentityUrlExternal"] == "http://localhost:5105"  # the .env's
    assert basket["sidecars"] == [
        {
            "name": "basket-api-dapr",
            "image": "daprio/daprd:1.4.0",
            "command": [
                "./daprd",
                "-app-id",
                "basket-api",
                "-app-port",
                "80",
                "-components-path",
                "/components",
                "-config",
                "/configuration/eshop-config.yaml",
            ],
        }
    ]
    assert [m["source"] for m in basket["mounts"]] == [
        str(base / "dapr/components"),
        str(base / "dapr/configuration"),
    ]


def test_fabrics_dotted_services_and_its_second_file_in_a_subdirectory() -> None:
    base = CORPUS / "fabric-dotted-names"
    specs = {s.short_name: s.spec for s in corpus("fabric-dotted-names").services}
    peer = specs["peer0.org1.example.com"]
    assert peer["name"] == "x-peer0-org1-example-com"
    assert peer["networks"] == [{"target": "fabric_test", "aliases": ["peer0.org1.example.com"]}]
    # the second file's ./docker/peercfg is the project directory's (compose/, the first file's), and
    # ${DOCKER_SOCK} comes from the .env beside the first file
    sources = {m["target"]: m["source"] for m in peer["mounts"]}
    assert sources["/etc/hyperledger/peercfg"] == str(base / "compose/docker/peercfg")
    assert sources["/host/var/run/docker.sock"] == "/var/run/docker.sock"
    assert sources["/var/hyperledger/production"] == "x_peer0.org1.example.com"
    assert peer["env"]["CHAINCODE_AS_A_SERVICE_BUILDER_CONFIG"] == '{"peername":"peer0org1"}'
    assert peer["env"]["CORE_VM_DOCKER_HOSTCONFIG_NETWORKMODE"] == "fabric_test"  # merged from both files
    assert specs["cli"]["networks"] == [{"target": "x_default", "aliases": []}]


def test_jhipsters_extended_database_and_its_multi_line_health_check() -> None:
    definition = corpus("jhipster-extends-healthcheck")
    specs = {s.short_name: s.spec for s in definition.services}
    assert specs["postgresql"]["health"]["cmd"] == ["CMD-SHELL", "pg_isready -U ${POSTGRES_USER}"]
    assert specs["postgresql"]["publish"] == [
        {"target": 5432, "published": 5432, "protocol": "tcp", "host_ip": "127.0.0.1"}
    ]
    check = specs["app"]["health"]["cmd"]  # a double-quoted scalar over three lines: folded into one
    assert check[0] == "CMD-SHELL"
    assert (
        'printf "GET /management/health HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n" >&3; grep -q' in check[1]
    )
    assert check[1].endswith(""""\\"status\\":\\"UP\\"" <&3'""")
    assert deploy_waves(definition)[1].wait_for == (("x-postgresql", "service_healthy"),)


def test_the_samples_value_forms() -> None:
    definition = load(
        """
        services:
          app:  # label-studio: a default written as two quotes; dask: a quoted list-form value
            image: heartexlabs/label-studio:latest
            environment:
              - LABEL_STUDIO_HOST=${LABEL_STUDIO_HOST:-""}
              - DASK_SCHEDULER_ADDRESS="tcp://scheduler:8786"
            restart: on-failure:5  # mage-ai
          caddy:  # caddy-docker-proxy: a label with no value
            image: lucaslorentz/caddy-docker-proxy:ci-alpine
            deploy:
              labels:
                caddy_controlled_server:
          node:  # tendermint's localnet: a port range, $$ kept for the container's shell
            image: tendermint/localnode
            ports: ["26659-26660:26656-26657"]
            environment: ["LOG=$${LOG:-tendermint.log}"]
        """
    )
    app = spec_of(definition, "app")
    assert app["env"] == {"LABEL_STUDIO_HOST": '""', "DASK_SCHEDULER_ADDRESS": '"tcp://scheduler:8786"'}
    assert (app["restart"]["condition"], app["restart"]["max_attempts"]) == ("on-failure", 5)
    assert spec_of(definition, "caddy")["service_labels"] == {"caddy_controlled_server": ""}
    node = spec_of(definition, "node")
    assert [(p["published"], p["target"]) for p in node["publish"]] == [(26659, 26656), (26660, 26657)]
    assert node["env"] == {"LOG": "${LOG:-tendermint.log}"}


# tendermint's localnet: four nodes, each at a fixed `ipv4_address` of one network. An ignored key is warned
# once, naming every service that writes it (as `cpuset`, `build` or `container_name` are), where each
# service's attachment used to get a line of its own.
def test_a_network_key_ignored_in_several_services_is_one_warning() -> None:
    definition = load(
        """
        services:
          node0: {image: tendermint/localnode, networks: {localnet: {ipv4_address: 192.167.10.2}}}
          node1: {image: tendermint/localnode, networks: {localnet: {ipv4_address: 192.167.10.3}}}
          edge: {image: traefik, networks: [hostnet, localnet]}
          worker: {image: busybox, networks: [hostnet]}
        networks:
          localnet: {driver: bridge}
          hostnet: {name: host, external: true}
        """
    )
    warned = [w for w in definition.warnings if w.startswith("ignoring networks.")]
    assert warned == [
        "ignoring networks.localnet.ipv4_address (services node0, node1): task addresses come from the "
        "node's lease",
        "ignoring networks.hostnet (service edge): Swarm's external network 'host' beside other networks "
        "is not applied: the tasks are on the others (attached to it alone, a service shares its node's "
        "network namespace)",
    ]  # worker, on hostnet alone, is on the host network (test_compose_real_world.py)
