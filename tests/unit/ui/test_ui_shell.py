"""The web UI's static shell on the TCP API app: served without a token, with a strict CSP; data needs one."""

from __future__ import annotations

import re

from starlette.testclient import TestClient

from p2porch.api.ratelimit import FailureLimiter
from p2porch.api.server import Endpoint
from p2porch.control.remote_api import remote_app
from p2porch.ui import PUBLIC_PATHS, PUBLIC_PREFIXES, load_assets, ui_routes
from p2porch.vault.access import Role


async def _services(body, params):
    return [{"name": "web"}]


def _client() -> TestClient:
    tokens = {"good-read": ("viewer", Role.READ)}
    app = remote_app(
        [
            Endpoint("GET", "/services", _services, "list"),
            Endpoint("POST", "/services/{service}/scale", _services, "scale"),
        ],
        tokens.get,
        limiter=FailureLimiter(burst=100, per_s=0.0),  # each TestClient request is its own trio run (clock)
        extra_routes=ui_routes(),
        public_prefixes=PUBLIC_PREFIXES,
        public_paths=PUBLIC_PATHS,
    )
    return TestClient(app, backend="trio")


def test_the_shell_needs_no_token_and_carries_a_strict_csp():
    client = _client()
    for path in ("/", "/ui"):
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 302 and response.headers["location"] == "/ui/"
    page = client.get("/ui/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "default-src 'none'" in csp and "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp and page.headers["x-content-type-options"] == "nosniff"
    script = client.get("/ui/app.js")
    assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
    assert client.get("/ui/app.css").headers["content-type"].startswith("text/css")
    assert client.get("/ui/..%2F__init__.py").status_code == 404  # only the packaged assets, by name
    assert client.get("/ui/nothing.js").status_code == 404


def test_the_page_has_no_inline_script_or_style_and_loads_nothing_remote():
    assets = load_assets()
    assert {"index.html", "app.js", "app.css"} <= set(assets)
    html = assets["index.html"][0].decode()
    for script in re.findall(r"<script[^>]*>(.*?)</script>", html, flags=re.S):
        assert script.strip() == ""  # only <script src=...>
    assert " style=" not in html and "<style" not in html
    assert not re.search(r"\son[a-z]+=", html)  # no inline event handlers
    for text in (html, assets["app.js"][0].decode(), assets["app.css"][0].decode()):
        assert "http://" not in text and "https://" not in text  # no CDN, nothing remote
    script = assets["app.js"][0].decode()
    assert "sessionStorage" in script and "localStorage" not in script and "innerHTML" not in script


def test_data_routes_still_need_a_token_and_the_role():
    client = _client()
    assert client.get("/v1/services").status_code == 401
    ok = client.get("/v1/services", headers={"authorization": "Bearer good-read"})
    assert ok.status_code == 200 and ok.json() == [{"name": "web"}]
    refused = client.post("/v1/services/web/scale", headers={"authorization": "Bearer good-read"}, json={})
    assert refused.status_code == 403 and "needs the operate role" in refused.json()["message"]
    assert client.get("/metrics").status_code == 401  # "/" is public only as an exact path


def test_hidden_elements_stay_hidden_whatever_their_display_rule():
    """The page shows and hides its parts with the ``hidden`` attribute; an author ``display`` rule
    beats the browser's ``[hidden]`` style, so ``main { display: flex }`` showed the empty dashboard
    ("Events connecting…") behind the sign-in form (operator walk, chromium --headless screenshot)."""
    assets = load_assets()
    css, html = assets["app.css"][0].decode(), assets["index.html"][0].decode()
    hidden_ids = re.findall(r'<(\w+)[^>]*\bid="([^"]+)"[^>]*\bhidden\b', html)
    displayed = {
        tag for tag, _ in hidden_ids if re.search(rf"(^|\}}|,)\s*{tag}\s*\{{[^}}]*display\s*:", css, re.M)
    }
    assert displayed, "the check sees main's display rule"
    assert re.search(r"\[hidden\]\s*\{[^}]*display\s*:\s*none\s*!important", css)


def test_a_job_row_shows_its_execution_progress_and_its_panel_its_done_tasks():
    """h52a: the services table showed a done job as ``0/3`` (``service ls``: ``0/3 (3/3 completed)``),
    a cron job before its first tick as ``0/0``, and the job's panel had no task at all (it asked for
    the tasks meant to run; a job's are told to stop once complete). The table says what ``service ls``
    says (``replicasText``, run here under node when it is installed), the panel lists the tasks of the
    current execution."""
    import json
    import shutil
    import subprocess

    import pytest

    from p2porch.cli.service_rows import job_progress_text

    script = load_assets()["app.js"][0].decode()
    assert "replicasText(s)" in script and "tasks?all=${job ? " in script
    assert "t.job_iteration === service.job.iteration" in script
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    function = re.search(r"^function replicasText\(s\) \{.*?^\}$", script, flags=re.S | re.M)
    assert function is not None
    views = [
        {"running": 0, "desired": 3, "job": {"iteration": 1, "completed": 3, "total": 3, "failed": 0,
                                              "tasks_running": 0, "tasks_desired": 3}},
        {"running": 0, "desired": 2, "job": {"iteration": 1, "completed": 0, "total": 2, "failed": 2,
                                              "tasks_running": 0, "tasks_desired": 2}},
        {"running": 0, "desired": 1, "job": {"iteration": 4, "completed": 1, "total": 1, "failed": 0,
                                              "schedule": "* * * * *", "next_tick": 1796464200.0,
                                              "tasks_running": 0, "tasks_desired": 1}},
        {"running": 0, "desired": 0, "job": {"iteration": 0, "completed": 0, "total": 1, "failed": 0,
                                              "schedule": "* * * * *", "next_tick": 1796464200.0}},
        {"running": 2, "desired": 3},
    ]  # fmt: skip
    program = f"{function.group(0)}\nfor (const s of {json.dumps(views)}) console.log(replicasText(s));"
    shown = subprocess.run([node, "-e", program], capture_output=True, text=True, check=True).stdout
    expected = [job_progress_text(v["job"]) if "job" in v else "2/3" for v in views]
    assert shown.splitlines() == expected
    assert expected[0] == "0/3 (3/3 completed)" and expected[2].endswith(", next 09:50:00 UTC)")


def _run_functions(names: tuple[str, ...], program: str) -> list[str]:
    """``program`` run under node after app.js's top-level ``names`` (constants and functions)."""
    import shutil
    import subprocess

    import pytest

    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    script = load_assets()["app.js"][0].decode()
    parts = []
    for name in names:
        found = re.search(rf"^(?:const {name} = .*?;|function {name}\(.*?^\}})$", script, flags=re.S | re.M)
        assert found is not None, name
        parts.append(found.group(0))
    run = subprocess.run([node, "-e", "\n".join([*parts, program])], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    return run.stdout.splitlines()


def test_a_job_panel_scales_its_total_and_lists_an_older_executions_running_tasks():
    """r52g: the Replicas field of a job's panel was filled with ``desired`` (the tasks at once: 0 before a
    cron job's first tick), so Scale without an edit rewrote the total and started an execution; it shows
    the spec's replicas. A cron job under ``allow`` keeps an older execution's tasks running: the panel
    listed only the current execution's, it lists those too (not a done or stopped older one)."""
    import json

    job = {"mode": "replicated-job", "desired": 0, "spec": {"replicas": 5}, "job": {"iteration": 3}}
    plain = {"mode": "replicated", "desired": 4, "spec": {"replicas": 4}, "job": None}
    tasks = [
        {"name": "c.1", "job_iteration": 3, "desired_state": "complete", "state": "complete"},
        {"name": "c.2", "job_iteration": 2, "desired_state": "complete", "state": "running"},
        {"name": "c.3", "job_iteration": 2, "desired_state": "complete", "state": "complete"},
        {"name": "c.4", "job_iteration": 1, "desired_state": "shutdown", "state": "running"},
        {"name": "c.5", "job_iteration": 2, "desired_state": "shutdown", "state": "shutdown"},
    ]
    program = (
        f"const job = {json.dumps(job)}, plain = {json.dumps(plain)}, tasks = {json.dumps(tasks)};\n"
        "console.log(scaleValue(job), scaleValue(plain));\n"
        "console.log(panelTasks(job, tasks).map((t) => t.name).join(' '));\n"
        "console.log(panelTasks(plain, tasks).length);"
    )
    shown = _run_functions(("FINAL_STATES", "panelTasks", "scaleValue"), program)
    assert shown == ["5 4", "c.1 c.2", "5"]
