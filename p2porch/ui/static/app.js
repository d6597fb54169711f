// p2porch web UI: plain JavaScript, no build step. Every datum comes from the /v1 API with the access
// token kept in sessionStorage (never in a URL); elements are built with textContent (no HTML injection).
"use strict";

const TOKEN_KEY = "p2porch.token";
const REFRESH_MS = 5000;
const USAGE_REFRESH_MS = 4000; // /stats/nodes asks every node: at most one call per refresh
const MAX_EVENTS = 200;
const MAX_LOG_LINES = 500;

const ui = {
  selected: null, // name of the service shown in the detail panel
  usage: {}, // node name -> usage row of /v1/stats/nodes
  usageAt: 0,
  timer: null,
  refreshSoon: null,
  events: null, // AbortController of the event stream
  logs: null, // AbortController of the followed logs
};

const $ = (id) => document.getElementById(id);

function el(tag, props, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (key === "class") node.className = value;
    else if (key.startsWith("data-")) node.setAttribute(key, value);
    else node[key] = value;
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

function token() { return sessionStorage.getItem(TOKEN_KEY); }

class ApiError extends Error {
  constructor(status, body) {
    super((body && body.message) || `HTTP ${status}`);
    this.status = status;
  }
}

async function api(method, path, body) {
  const headers = { Authorization: `Bearer ${token()}` };
  const init = { method, headers, cache: "no-store" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  // the UI polls: its reads take this node's own copy (stale=true) and never wait for the cluster's
  // read barrier (docs/raft.md "Reads"); its own writes go through this node, so it sees them
  const target = method === "GET" ? `${path}${path.includes("?") ? "&" : "?"}stale=true` : path;
  const response = await fetch(`/v1${target}`, init);
  const data = await response.json().catch(() => null);
  if (response.status === 401) signOut((data && data.message) || "the token was refused");
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

// Newline-delimited JSON from a streaming route, item by item, until it ends or `signal` aborts.
async function stream(path, signal, onItem) {
  const response = await fetch(`/v1${path}`, {
    headers: { Authorization: `Bearer ${token()}` }, cache: "no-store", signal,
  });
  if (!response.ok) {
    const data = await response.json().catch(() => null);
    if (response.status === 401) signOut((data && data.message) || "the token was refused");
    throw new ApiError(response.status, data);
  }
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let end;
    while ((end = buffer.indexOf("\n")) >= 0) {
      const line = buffer.slice(0, end).trim();
      buffer = buffer.slice(end + 1);
      if (line) onItem(JSON.parse(line));
    }
  }
}

function notice(text, isError) {
  const box = $("notice");
  box.textContent = text;
  box.className = isError ? "error" : "";
  box.hidden = false;
}

function when(seconds) {
  if (!seconds) return "";
  return new Date(seconds * 1000).toLocaleTimeString([], { hourCycle: "h23" });
}

function stateCell(state) {
  return el("td", { class: `state-${String(state).toLowerCase()}` }, state);
}

// A node's status cell: the API's status_text ("ready (engine unreachable)" while its agent cannot reach its
// Docker engine), with since when and why on hover (the title) and in the line below it; "ready
// (restarting)" while its daemon restarts, until when it is held on hover.
function nodeStatusCell(n) {
  const engine = n.engine || {};
  const text = n.status_text || n.status;
  if (n.restart && n.status === "ready") {
    return el("td", { class: "state-restarting", title: `daemon restarting: held ready until ${when(n.restart.until)}` }, text);
  }
  if (engine.reachable !== false || n.status !== "ready") return stateCell(text); // a down node is down
  const why = `engine unreachable since ${when(engine.unreachable_since)}: ${engine.error || "?"}`;
  return el("td", { class: "state-engine-down", title: why },
    text, el("div", { class: "engine-error muted" }, why));
}

function percent(value) { return value === null || value === undefined ? "" : `${value}%`; }

// ----- cluster overview

async function refreshOverview() {
  const [status, nodes] = await Promise.all([api("GET", "/status"), api("GET", "/nodes")]);
  const cluster = status.cluster || {};
  const leader = nodes.find((n) => n.raft_role === "leader");
  $("leader").textContent = leader ? `${leader.name} (${leader.address})` : "none known";
  $("quorum").textContent = cluster.has_quorum ? "yes" : "NO";
  $("quorum").className = cluster.has_quorum ? "state-ok" : "state-bad";
  $("term").textContent = cluster.term ?? "";
  const byState = {};
  for (const n of nodes) {
    const text = n.status_text || n.status;
    byState[text] = (byState[text] || 0) + 1;
  }
  $("node-states").textContent = Object.entries(byState).map(([s, c]) => `${c} ${s}`).join(", ");
  $("cluster-line").textContent =
    `cluster ${String(cluster.cluster_id || "").slice(0, 12)} · via ${status.node.name}`;
  if (Date.now() - ui.usageAt > USAGE_REFRESH_MS) {
    ui.usageAt = Date.now();
    api("GET", "/stats/nodes").then((rows) => {
      ui.usage = Object.fromEntries(rows.map((r) => [r.node, r]));
    }).catch(() => {});
  }
  const body = $("nodes-table").tBodies[0];
  body.replaceChildren(...nodes.map((n) => {
    const usage = ui.usage[n.name] || {};
    const labels = el("td", {}, ...Object.entries(n.labels).map(([k, v]) => el("span", { class: "label" }, `${k}=${v}`)));
    const draining = n.availability !== "active";
    const action = el("button", { type: "button", class: "secondary" }, draining ? "Activate" : "Drain");
    action.setAttribute("data-action", draining ? "activate" : "drain");
    action.addEventListener("click", () => act(
      `${draining ? "activate" : "drain"} ${n.name}`,
      () => api("POST", `/nodes/${encodeURIComponent(n.name)}/update`, { availability: draining ? "active" : "drain" }),
    ));
    return el("tr", { "data-node": n.name },
      el("td", {}, n.name), el("td", {}, n.address), nodeStatusCell(n), stateCell(n.availability),
      el("td", {}, n.raft_role), labels, el("td", {}, usage.tasks ?? ""),
      el("td", {}, percent(usage.cpu_percent)), el("td", {}, percent(usage.memory_percent)),
      el("td", {}, action));
  }));
}

// ----- services

// A service's REPLICAS as `service ls` shows it (cli/service_rows.job_progress_text): a job's tasks
// running / wanted at once, then its execution's completed slots, failed slots and a cron job's next tick.
function replicasText(s) {
  const job = s.job;
  if (!job) return `${s.running}/${s.desired}`;
  const next = job.schedule && job.next_tick
    ? `next ${new Date(job.next_tick * 1000).toISOString().slice(11, 19)} UTC` : "";
  if (job.iteration === 0 && job.schedule) return `0/0 (${next})`;
  const extras = [`${job.completed}/${job.total} completed`];
  if (job.failed) extras.push(`${job.failed} failed`);
  if (next) extras.push(next);
  return `${job.tasks_running || 0}/${job.tasks_desired || 0} (${extras.join(", ")})`;
}

async function refreshServices() {
  const services = await api("GET", "/services");
  const body = $("services-table").tBodies[0];
  $("services-empty").hidden = services.length > 0;
  ui.jobs = new Set(services.filter((s) => s.job).map((s) => s.name));
  body.replaceChildren(...services.map((s) => {
    const pending = s.pending.reduce((sum, p) => sum + p.count, 0);
    const row = el("tr", { "data-service": s.name, class: s.name === ui.selected ? "selected" : "" },
      el("td", {}, s.name), el("td", {}, s.mode), el("td", {}, s.image),
      el("td", { class: "running" }, replicasText(s)),
      el("td", {}, s.update_status ? s.update_status.state || "" : ""),
      el("td", { class: pending ? "state-pending" : "" }, pending || ""));
    row.addEventListener("click", () => select(s.name));
    return row;
  }));
  if (ui.selected && !services.some((s) => s.name === ui.selected)) select(null);
  else if (ui.selected) await refreshDetail();
}

function select(name) {
  if (ui.logs) { ui.logs.abort(); ui.logs = null; }
  $("logs").textContent = "";
  $("logs-toggle").textContent = "Follow logs";
  ui.selected = name;
  $("service-detail").hidden = !name;
  for (const row of $("services-table").tBodies[0].rows) {
    row.classList.toggle("selected", row.dataset.service === name);
  }
  if (name) {
    $("scale-replicas").value = "";
    $("image-ref").value = "";
    refreshDetail().catch(showError);
  }
}

const FINAL_STATES = new Set(["complete", "failed", "shutdown", "rejected", "orphaned"]);

// A job's panel: the tasks of its current execution (done ones too) and any older one's still running (a
// cron job under the `allow` policy keeps them); a service's: all it was given.
function panelTasks(service, found) {
  if (!service.job) return found;
  return found.filter((t) => t.job_iteration === service.job.iteration
    || (t.desired_state !== "shutdown" && !FINAL_STATES.has(t.state)));
}

// What the Replicas field starts from: a replicated job's total completions (its spec), not the tasks it
// runs at once (0 before a cron job's first tick), so Scale without an edit keeps the total.
function scaleValue(service) {
  return service.mode === "replicated-job" ? service.spec.replicas : service.desired;
}

async function refreshDetail() {
  const name = ui.selected;
  const path = `/services/${encodeURIComponent(name)}`;
  // a job's tasks of its current execution, done ones too (they are told to stop once complete)
  const job = ui.jobs !== undefined && ui.jobs.has(name);
  const [service, found] = await Promise.all(
    [api("GET", path), api("GET", `${path}/tasks?all=${job ? "true" : "false"}`)]);
  if (name !== ui.selected) return;
  const tasks = panelTasks(service, found);
  $("detail-name").textContent = service.name;
  const replicas = service.job ? replicasText(service) : `${service.running}/${service.desired} running`;
  $("detail-summary").textContent =
    `${service.mode} · ${service.image} · ${replicas} · version ${service.version}`;
  // an emptied field the user is typing into is theirs: the refresh refills only one not focused
  if (!$("scale-replicas").value && document.activeElement !== $("scale-replicas")) $("scale-replicas").value = scaleValue(service);
  if (!$("image-ref").value && document.activeElement !== $("image-ref")) $("image-ref").value = service.image;
  $("pending").hidden = service.pending.length === 0;
  $("pending-list").replaceChildren(...service.pending.map(
    (p) => el("li", {}, `${p.count} task(s): ${p.explanation || "waiting for the scheduler"}`)));
  $("tasks-table").tBodies[0].replaceChildren(...tasks.map((t) => el("tr", { "data-task": t.name },
    el("td", {}, t.name), el("td", {}, t.node || ""), stateCell(t.state), el("td", {}, t.desired_state),
    el("td", {}, when(t.state_at)), el("td", { class: t.error ? "error" : "muted" }, t.error || t.message || ""))));
}

async function act(what, call) {
  try {
    await call();
    notice(`${what}: done`, false);
    $("scale-replicas").value = ""; // shown again from the service as it is now
    $("image-ref").value = "";
  } catch (error) {
    if (!(error instanceof ApiError && error.status === 401)) notice(`${what}: ${error.message}`, true);
  }
  refresh();
}

function showError(error) {
  if (!(error instanceof ApiError && error.status === 401)) notice(error.message, true);
}

function toggleLogs() {
  if (ui.logs) {
    ui.logs.abort();
    ui.logs = null;
    $("logs-toggle").textContent = "Follow logs";
    return;
  }
  const controller = new AbortController();
  ui.logs = controller;
  $("logs-toggle").textContent = "Stop";
  const out = $("logs");
  out.textContent = "";
  const path = `/services/${encodeURIComponent(ui.selected)}/logs?tail=100&follow=true`;
  stream(path, controller.signal, (item) => {
    if (item.error) { out.append(`! ${item.message}\n`); return; }
    out.append(`${item.task} ${item.line}\n`);
    while (out.childNodes.length > MAX_LOG_LINES) out.firstChild.remove();
    out.scrollTop = out.scrollHeight;
  }).catch((error) => { if (!controller.signal.aborted) out.append(`! ${error.message}\n`); });
}

// ----- events

function describe(event) {
  if (event.type === "task") {
    const where = event.node ? ` on ${event.node}` : "";
    return `task ${event.task} ${event.state}${where}${event.detail ? ` — ${event.detail}` : ""}`;
  }
  const subject = event.service || event.node || event.name || event.network || event.leader || "";
  const extra = event.message ? ` — ${event.message}` : "";
  return `${event.type} ${subject} ${event.action || ""}${extra}`.trim();
}

function followEvents() {
  const controller = new AbortController();
  ui.events = controller;
  $("events-state").textContent = "live";
  stream("/events", controller.signal, (event) => {
    const list = $("events-list");
    const item = el("li", { "data-type": event.type, "data-action": event.action || event.state || "" },
      el("time", {}, when(event.at)), describe(event));
    list.prepend(item);
    while (list.children.length > MAX_EVENTS) list.lastChild.remove();
    if (!ui.refreshSoon) ui.refreshSoon = setTimeout(() => { ui.refreshSoon = null; refresh(); }, 400);
  }).catch(() => {}).finally(() => {
    if (controller.signal.aborted) return;
    $("events-state").textContent = "reconnecting…";
    setTimeout(() => { if (ui.events === controller && token()) followEvents(); }, 2000);
  });
}

// ----- session

function refresh() {
  if (!token()) return;
  refreshOverview().catch(showError);
  refreshServices().catch(showError);
}

function signIn(value) {
  sessionStorage.setItem(TOKEN_KEY, value);
  start();
}

function signOut(reason) {
  sessionStorage.removeItem(TOKEN_KEY);
  if (ui.events) ui.events.abort();
  if (ui.logs) ui.logs.abort();
  ui.events = ui.logs = null;
  clearInterval(ui.timer);
  $("app").hidden = true;
  $("sign-out").hidden = true;
  $("notice").hidden = true;
  $("login").hidden = false;
  $("login-error").textContent = reason || "";
}

function start() {
  $("login").hidden = true;
  $("app").hidden = false;
  $("sign-out").hidden = false;
  $("login-error").textContent = "";
  refresh();
  clearInterval(ui.timer);
  ui.timer = setInterval(refresh, REFRESH_MS);
  followEvents();
}

document.addEventListener("DOMContentLoaded", () => {
  $("login-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const value = $("login-token").value.trim();
    $("login-token").value = "";
    if (value) signIn(value);
  });
  $("sign-out").addEventListener("click", () => signOut(""));
  $("scale-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const replicas = Number($("scale-replicas").value);
    const name = ui.selected;
    act(`scale ${name} to ${replicas}`,
      () => api("POST", `/services/${encodeURIComponent(name)}/scale`, { replicas }));
  });
  $("image-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const image = $("image-ref").value.trim();
    const name = ui.selected;
    act(`update ${name} to ${image}`,
      () => api("POST", `/services/${encodeURIComponent(name)}/update`, { image }));
  });
  $("rollback").addEventListener("click", () => {
    const name = ui.selected;
    act(`roll back ${name}`, () => api("POST", `/services/${encodeURIComponent(name)}/rollback`, {}));
  });
  $("logs-toggle").addEventListener("click", toggleLogs);
  if (token()) start(); else signOut("");
});
