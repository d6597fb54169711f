"""The web UI in a real headless browser (Debian's chromium via Selenium) against a 3-node sandbox (issue 18).

One cluster (``p2ui``, 10.36.0.0/24) whose daemons serve the TLS API, and with it the UI, on
ADDRESS:7950. The browser runs in the host namespace, outside every node, and trusts exactly the
certificate n1 serves (verified here against the cluster CA first, then pinned by its key). It signs in
with an operate token: the overview shows the leader, quorum and three ready nodes; a service created
meanwhile appears in the live event list; scaling it from the page starts the containers in the nodes'
dockerds; its logs stream into the page; an image update and a rollback from the page converge;
draining a node from the page moves its task away; its dockerd killed, its row says ``ready (engine
unreachable)`` with the error on hover. With a read token the same scale is refused with the
403 message and nothing changes. Screenshots go to ``$P2PORCH_ARTIFACTS`` (default /tmp/p2porch-artifacts).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import signal
import socket
import ssl
from collections.abc import Iterator

import httpx
import pytest
from clusterkit import IMAGE, api_get, cli, cli_json, restart_dockerd, wait_for
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from prometheus_client.parser import text_string_to_metric_families

from p2porch.sandbox.dockerd import docker
from p2porch.sandbox.sandbox import Sandbox, SandboxNode
from p2porch.sandbox.system import pid_alive, read_pid

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.common.exceptions import WebDriverException  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402

PORT = 7950
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
LOOP = "while true; do echo hello-from-$(hostname); sleep 1; done"  # a service with logs
ARTIFACTS = os.environ.get("P2PORCH_ARTIFACTS", "/tmp/p2porch-artifacts")


def _text(sb: Sandbox, node: str, *args: str) -> str:
    result = cli(sb, node, *args)
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout.decode().strip()


@pytest.fixture(scope="module")
def cluster() -> Iterator[tuple[Sandbox, list[SandboxNode]]]:
    sb = Sandbox("p2ui", subnet="10.36.0.0/24", api_port=PORT)
    try:
        nodes = sb.up(3)
        token = cli_json(sb, "n1", "init")["token"]
        for name in ("n2", "n3"):
            result = cli(sb, name, "join", "10.36.0.1", "--token", token)
            assert result.returncode == 0, result.stderr.decode()
        wait_for(
            lambda: [r["status"] for r in api_get(nodes[0], "/nodes")] == ["ready"] * 3, 90, "3 ready nodes"
        )
        yield sb, nodes
    finally:
        sb.down()


def pinned_key(addr: str, ca_pem: str) -> str:
    """The base64 SHA-256 of the key of the certificate ``addr`` serves, once it verifies with ``ca_pem``."""
    host, port = addr.rsplit(":", 1)
    context = ssl.create_default_context(cadata=ca_pem)
    with (
        socket.create_connection((host, int(port)), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=host) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    spki = (
        x509.load_der_x509_certificate(der)
        .public_key()
        .public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    )
    return base64.b64encode(hashlib.sha256(spki).digest()).decode()


@pytest.fixture(scope="module")
def browser(cluster):
    if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
        if os.environ.get("CI") == "true":
            pytest.fail("chromium and chromium-driver are not installed (scripts/install.sh)")
        pytest.skip("chromium and chromium-driver are not installed (scripts/install.sh)")
    sb, _ = cluster
    ca_pem = _text(sb, "n1", "cluster", "ca")
    spki = wait_for(
        lambda: pinned_key(f"10.36.0.1:{PORT}", ca_pem), 30, "n1's TLS API", retry_on=(ssl.SSLError,)
    )
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",  # root in a container
        "--disable-dev-shm-usage",
        "--window-size=1400,1250",
        f"--ignore-certificate-errors-spki-list={spki}",  # trust exactly the verified key, nothing else
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # the console, for CSP violations
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)  # no Selenium Manager download
    driver.set_page_load_timeout(30)
    os.makedirs(ARTIFACTS, exist_ok=True)
    try:
        yield driver
    finally:
        driver.quit()


def shot(driver, name: str) -> str:
    path = os.path.join(ARTIFACTS, f"web-ui-{name}.png")
    driver.save_screenshot(path)
    return path


def until(driver, predicate, timeout_s: float, what: str):
    """Poll the page until ``predicate(driver)`` is truthy (elements re-render every few seconds)."""
    try:
        return wait_for(lambda: predicate(driver), timeout_s, what, retry_on=(WebDriverException,))
    except AssertionError:
        shot(driver, "failure")
        raise


def texts(driver, css: str) -> list[str]:
    return [e.text for e in driver.find_elements(By.CSS_SELECTOR, css)]


def sign_in(driver, token: str) -> None:
    driver.get(f"https://10.36.0.1:{PORT}/")
    until(driver, lambda d: d.find_element(By.ID, "login-token").is_displayed(), 20, "the sign-in form")
    assert driver.current_url == f"https://10.36.0.1:{PORT}/ui/"  # / redirects to the UI
    driver.find_element(By.ID, "login-token").send_keys(token)
    driver.find_element(By.ID, "login-submit").click()
    until(driver, lambda d: d.find_element(By.ID, "app").is_displayed(), 10, "the dashboard")


def click(driver, css: str, what: str) -> None:
    """Click ``css``, again if the page re-rendered it in between (tables are rebuilt every refresh)."""
    until(driver, lambda d: d.find_element(By.CSS_SELECTOR, css).click() is None, 10, what)


def type_into(driver, element_id: str, text: str) -> None:
    """Type ``text`` into a field as a user does. WebDriver's clear blurs the field, and the page's
    refresh (an event, 0.4 s later) refills an empty field with the service's value before the keys
    arrive (the CI run's update went to IMAGE + text); so type again until the field holds just it."""

    def typed(d) -> bool:
        field = d.find_element(By.ID, element_id)
        if field.get_attribute("value") != text:
            field.clear()
            field.send_keys(text)
        return field.get_attribute("value") == text

    until(driver, typed, 10, f"{text!r} typed into #{element_id}")


def notice(driver) -> str:
    box = driver.find_element(By.ID, "notice")
    return box.text if box.is_displayed() else ""


def running_containers(nodes: list[SandboxNode], service: str) -> int:
    count = 0
    for node in nodes:
        out = docker(node.dockerd, "ps", "-q", "--filter", f"label=p2porch.service={service}", check=False)
        count += len(out.stdout.decode().split())
    return count


def engine_down_in_page(driver, sb: Sandbox, node: SandboxNode) -> None:
    """Kill ``node``'s dockerd: the page's node table shows ``ready (engine unreachable)`` with since when
    and why as the cell's title and the line under it, and the overview counts it apart; then start the
    dockerd again and see the row ready."""
    cell = f"#nodes-table tr[data-node={node.name}] td:nth-child(3)"
    pid = read_pid(node.dockerd.pidfile)
    assert pid is not None and pid_alive(pid)
    try:
        os.kill(pid, signal.SIGKILL)

        def engine_down_cell(d) -> tuple[str, str] | None:
            """The cell's text and title, read together: the table is rebuilt every refresh."""
            element = d.find_element(By.CSS_SELECTOR, cell)
            text, title = element.text, element.get_attribute("title")
            return (text, title) if text.startswith("ready (engine unreachable)") else None

        text, title = until(
            driver, engine_down_cell, 40, f"{node.name} ready (engine unreachable) in the page"
        )
        assert title.startswith("engine unreachable since ") and "engine" in title.split(": ", 1)[1], title
        assert title in text  # the same words under the status, for a reader without a mouse
        until(
            driver,
            lambda d: d.find_element(By.ID, "node-states").text == "2 ready, 1 ready (engine unreachable)",
            10,
            "the overview counts it apart",
        )
        shot(driver, "engine-down")
    finally:
        restart_dockerd(sb, node)
    until(
        driver,
        lambda d: d.find_element(By.CSS_SELECTOR, cell).text == "ready",
        60,
        f"{node.name} ready again",
    )


def test_web_ui_overview_events_scale_logs_drain_and_read_only_refusal(cluster, browser):
    sb, nodes = cluster
    driver = browser
    operate = _text(sb, "n1", "access", "create", "ui-op", "--role", "operate")
    viewer = _text(sb, "n1", "access", "create", "ui-view", "--role", "read")

    driver.get(f"https://10.36.0.1:{PORT}/ui/")
    until(driver, lambda d: d.find_element(By.ID, "login-token").is_displayed(), 20, "the sign-in form")
    # signed out, the dashboard is hidden (main's display: flex had overridden its hidden attribute)
    assert not driver.find_element(By.ID, "app").is_displayed()
    shot(driver, "sign-in")
    sign_in(driver, operate)
    assert driver.execute_script("return sessionStorage.getItem('p2porch.token')") == operate
    assert operate not in driver.current_url

    # overview: leader, quorum, three ready nodes (the same leader the API names)
    leader = next(n["name"] for n in api_get(nodes[0], "/nodes") if n["raft_role"] == "leader")
    until(driver, lambda d: d.find_element(By.ID, "leader").text.startswith(leader), 20, "the leader shown")
    assert driver.find_element(By.ID, "quorum").text == "yes"
    until(driver, lambda d: d.find_element(By.ID, "node-states").text == "3 ready", 20, "3 ready nodes")
    assert sorted(texts(driver, "#nodes-table tbody tr td:first-child")) == ["n1", "n2", "n3"]
    until(driver, lambda d: d.find_element(By.ID, "events-state").text == "live", 10, "the event stream")
    cpu = "#nodes-table tbody tr td:nth-child(8)"  # usage from /v1/stats/nodes (every node answered)
    until(driver, lambda d: [t.endswith("%") for t in texts(d, cpu)] == [True] * 3, 20, "node usage")

    # live events: a service created elsewhere (the CLI in n2) appears in the page's event list
    created = cli(
        sb, "n2", "service", "create", "--detach", "--name", "hello", "--replicas", "1",
        "--stop-grace-period", "1s", IMAGE, "sh", "-c", LOOP,
    )  # fmt: skip
    assert created.returncode == 0, created.stderr.decode()
    until(
        driver,
        lambda d: d.find_elements(By.CSS_SELECTOR, "#events-list li[data-type=service][data-action=created]"),
        20,
        "the service-created event in the page",
    )
    until(
        driver,
        lambda d: any("task hello.1 running on " in t for t in texts(d, "#events-list li")),
        30,
        "a task-running event in the page",
    )
    row = "#services-table tr[data-service=hello] td.running"
    until(driver, lambda d: texts(d, row) == ["1/1"], 60, "hello 1/1 in the services table")

    # scale from the page: the containers start in the nodes' dockerds
    click(driver, "#services-table tr[data-service=hello]", "the row of hello")
    until(driver, lambda d: d.find_element(By.ID, "service-detail").is_displayed(), 10, "the service panel")
    type_into(driver, "scale-replicas", "3")
    driver.find_element(By.ID, "scale-submit").click()
    until(driver, lambda d: "scale hello to 3: done" in notice(d), 20, "the scale acknowledged")
    wait_for(lambda: api_get(nodes[0], "/services/hello")["running"] == 3, 90, "3 running tasks")
    wait_for(lambda: running_containers(nodes, "hello") == 3, 30, "3 containers in the dockerds")
    until(driver, lambda d: texts(d, row) == ["3/3"], 20, "hello 3/3 in the page")
    until(
        driver,
        lambda d: texts(d, "#tasks-table tbody tr td:nth-child(3)") == ["running"] * 3,
        20,
        "3 running tasks in the service panel",
    )

    # logs of the service stream into the page
    driver.find_element(By.ID, "logs-toggle").click()
    until(driver, lambda d: "hello-from-" in d.find_element(By.ID, "logs").text, 30, "log lines in the page")
    shot(driver, "service")

    # update the image from the page (the same local image under another reference), then roll back
    def converged_on(image: str) -> bool:
        tasks = api_get(nodes[0], "/services/hello/tasks", all="false")
        return (
            api_get(nodes[0], "/services/hello")["image"] == image
            and [(t["state"], t["up_to_date"]) for t in tasks] == [("running", True)] * 3
        )

    type_into(driver, "image-ref", "p2porch/busybox")
    driver.find_element(By.ID, "image-submit").click()
    until(driver, lambda d: "update hello to p2porch/busybox: done" in notice(d), 20, "the update")
    wait_for(lambda: converged_on("p2porch/busybox"), 120, "hello updated to p2porch/busybox")
    driver.find_element(By.ID, "rollback").click()
    until(driver, lambda d: "roll back hello: done" in notice(d), 20, "the rollback acknowledged")
    wait_for(lambda: converged_on(IMAGE), 120, f"hello rolled back to {IMAGE}")
    until(driver, lambda d: texts(d, row) == ["3/3"], 20, "hello 3/3 in the page after the rollback")

    # drain a node from the page (operate)
    click(driver, "#nodes-table tr[data-node=n3] button[data-action=drain]", "the drain button of n3")
    until(driver, lambda d: "drain n3: done" in notice(d), 20, "the drain acknowledged")
    wait_for(
        lambda: next(n for n in api_get(nodes[0], "/nodes") if n["name"] == "n3")["availability"] == "drain",
        10,
        "n3 drained",
    )
    wait_for(lambda: api_get(nodes[0], "/services/hello")["running"] == 3, 90, "hello back at 3 off n3")
    wait_for(
        lambda: running_containers(nodes[2:], "hello") == 0 and running_containers(nodes, "hello") == 3,
        60,
        "hello's containers moved off n3",
    )
    until(driver, lambda d: texts(d, row) == ["3/3"], 20, "hello 3/3 in the page after the drain")
    shot(driver, "overview")

    # n3's engine killed (its tasks moved off by the drain): its row says so, with the error on hover
    engine_down_in_page(driver, sb, nodes[2])

    # a read-only token: the same scale is refused with the 403 message, and nothing changes
    driver.find_element(By.ID, "sign-out").click()
    until(driver, lambda d: d.find_element(By.ID, "login-token").is_displayed(), 10, "signed out")
    assert driver.execute_script("return sessionStorage.getItem('p2porch.token')") is None
    sign_in(driver, viewer)
    until(
        driver,
        lambda d: d.find_elements(By.CSS_SELECTOR, "#services-table tr[data-service=hello]"),
        20,
        "hello",
    )
    click(driver, "#services-table tr[data-service=hello]", "the row of hello")
    until(
        driver, lambda d: d.find_element(By.ID, "scale-replicas").get_attribute("value") == "3", 10, "3 shown"
    )
    type_into(driver, "scale-replicas", "1")
    driver.find_element(By.ID, "scale-submit").click()
    refused = until(driver, lambda d: "needs the operate role" in notice(d) and notice(d), 20, "the refusal")
    assert "token ui-view has read" in refused
    assert "error" in driver.find_element(By.ID, "notice").get_attribute("class")
    shot(driver, "read-only-refused")
    assert api_get(nodes[0], "/services/hello")["desired"] == 3  # the refusal was final: nothing committed
    assert running_containers(nodes, "hello") == 3

    # a wrong token is sent back to the sign-in form with the 401 message
    driver.find_element(By.ID, "sign-out").click()
    until(driver, lambda d: d.find_element(By.ID, "login-token").is_displayed(), 10, "signed out")
    driver.find_element(By.ID, "login-token").send_keys("p2pat_0000000000000000_" + "A" * 43)
    driver.find_element(By.ID, "login-submit").click()
    until(
        driver,
        lambda d: d.find_element(By.ID, "login-error").text == "a valid access token is required",
        10,
        "the 401 message",
    )
    console = [entry["message"] for entry in driver.get_log("browser")]
    assert not [m for m in console if "Content Security Policy" in m or "Refused to" in m], console
    if os.environ.get("P2PORCH_UI_SCREENSHOT"):  # refresh docs/ui.png: P2PORCH_UI_SCREENSHOT=docs/ui.png
        shutil.copy(os.path.join(ARTIFACTS, "web-ui-overview.png"), os.environ["P2PORCH_UI_SCREENSHOT"])


def test_events_since_replays_what_a_node_kept_and_until_ends_the_stream(cluster):
    """``events --since/--until/--filter`` on the same cluster, through n2's daemon: a service created
    through n1 is in n2's kept events (its created event and its task's), the window's end ends the
    command, and the filter keeps that service's events only (the command took no flag before)."""
    sb, nodes = cluster
    created = cli(sb, "n1", "service", "create", "--detach", "--name", "evt", IMAGE, "sleep", "1d")
    assert created.returncode == 0, created.stderr.decode()
    try:
        wait_for(lambda: api_get(nodes[1], "/services/evt")["running"] == 1, 60, "evt running")

        def kept() -> list[dict] | None:
            result = cli(sb, "n2", "--json", "events", "--since", "5m", "--until", "0s", "-f", "service=evt")
            assert result.returncode == 0, result.stderr.decode()  # it ended: --until is past
            events = [json.loads(line) for line in result.stdout.decode().splitlines()]
            states = {e.get("state") for e in events if e["type"] == "task"}
            return events if "running" in states else None

        events = wait_for(kept, 30, "evt's events kept by n2")
        assert events[0]["type"] == "service" and events[0]["action"] == "created", events
        assert {e.get("service") or e["task"].rpartition(".")[0] for e in events} == {"evt"}, events
        bad = cli(sb, "n2", "events", "--until", "soon")
        assert bad.returncode == 2 and "--until: 'soon'" in bad.stderr.decode()
    finally:
        cli(sb, "n1", "service", "rm", "evt")


def test_the_tls_listener_caps_connections_per_source_and_counts_refusals(cluster):
    """From the host (one source address), n2's TLS API admits 32 open connections, closes the next
    before its handshake, counts it in its metrics, and admits again once one closes (hypercorn closes
    a connection idle for 5 s: the counts are checked right after opening)."""
    sb, nodes = cluster
    ca_pem = _text(sb, "n1", "cluster", "ca")
    context = ssl.create_default_context(cadata=ca_pem)
    addr = ("10.36.0.2", PORT)
    unix = httpx.Client(transport=httpx.HTTPTransport(uds=nodes[1].p2porch_socket), timeout=10)

    def connect() -> ssl.SSLSocket:
        raw = socket.create_connection(addr, timeout=10)
        try:
            return context.wrap_socket(raw, server_hostname=addr[0])
        except BaseException:
            raw.close()
            raise

    def scrape() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        """n2's metrics through its unix socket: the TLS listener sees only this test's connections."""
        text = unix.get("http://p2porch/metrics").text
        return {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
        }

    refused_key = ("p2porch_api_connections_refused_total", (("reason", "per_source"),))
    open_key = ("p2porch_api_connections_open", ())
    wait_for(lambda: connect().close() is None, 30, "n2's TLS API", retry_on=(ssl.SSLError,))
    before = wait_for(lambda: (m := scrape())[open_key] == 0 and m, 10, "no open connection to n2")
    assert before[refused_key] == 0
    held: list[ssl.SSLSocket] = []
    try:
        for _ in range(32):
            held.append(connect())
        with pytest.raises(OSError):  # ssl.SSLEOFError or a reset
            connect().close()  # the 33rd: closed before the handshake
        after = scrape()
        assert after[refused_key] == 1 and after[open_key] == 32
        held.pop().close()
        held.append(wait_for(connect, 10, "a connection admitted once a slot is free", retry_on=(OSError,)))
    finally:
        for sock in held:
            sock.close()
    wait_for(lambda: scrape()[open_key] == 0, 10, "held connections released")
    unix.close()
