// workerlab dashboard: renders the server's view (pushed over Server-Sent Events) and sends the
// page's actions as POSTs. No framework, no build step. The page holds no secret: the browser
// sends the HttpOnly session cookie it got from the URL `workerlab dashboard` printed.
"use strict";
let view = null, receivedAt = 0, refused = null;

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (k === "style") node.style.cssText = v; // CSP: no inline style attributes
    else if (v !== null && v !== undefined && v !== false) node.setAttribute(k, v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

function toast(text) {
  const t = el("div", { class: "toast", role: "status" }, text);
  document.body.append(t);
  setTimeout(() => t.remove(), 4000);
}

// The dashboard refused this page (401/403: no session, or the dashboard was restarted): say so
// and how to get in, instead of a page that looks live.
function showRefused(message) {
  refused = message;
  const live = document.getElementById("live");
  live.textContent = "not authorised";
  live.className = "pill off";
  const b = document.getElementById("banner");
  b.hidden = false;
  b.className = "banner bad";
  b.textContent = `Not authorised: ${message}`;
}

async function api(path, options = {}) {
  const r = await fetch(path, { credentials: "same-origin", ...options });
  let data = {};
  try { data = await r.json(); } catch (e) { /* not JSON */ }
  if (r.status === 401 || r.status === 403) {
    const msg = typeof data.error === "string" ? data.error : `HTTP ${r.status}`;
    if (/^not authorised/.test(msg)) showRefused(msg.replace(/^not authorised:\s*/, ""));
  }
  return { r, data };
}

async function post(path, body) {
  const { r, data } = await api(path, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body || {}),
  });
  if (!r.ok) {
    const msg = typeof data.error === "string" ? data.error : JSON.stringify(data.error || data.detail || r.status);
    toast(`refused (${r.status}): ${msg}`);
  }
  return { ok: r.ok, data };
}

function fmtAge(s) {
  if (s === null || s === undefined) return "-";
  const live = s + (Date.now() / 1000 - receivedAt);
  if (live < 120) return `${Math.round(live)}s`;
  if (live < 7200) return `${Math.round(live / 60)}m`;
  return `${(live / 3600).toFixed(1)}h`;
}

function fmtTime(epoch) {
  return new Date(epoch * 1000).toLocaleTimeString();
}

function renderBanner(h) {
  const b = document.getElementById("banner");
  const msgs = [];
  let bad = false;
  if (h.auth === false) {
    msgs.push(`Not authorised: the API server refused this kubeconfig's credentials (${h.auth_error || "401/403"}). ` +
      "Was the token revoked (workerlab class remove) or did it expire? Nothing here is current until it is authorised again.");
    bad = true;
  }
  if (h.cluster === false) { msgs.push(`Cluster unreachable: ${h.cluster_error || "no answer"} — retrying by itself.`); bad = true; }
  if (h.operator === false) msgs.push("The operator is not Ready: nothing will replace a lost pod until it is back.");
  if (h.operator === "not installed") msgs.push("The operator is not installed (workerlab-system/workerlab-operator).");
  b.hidden = msgs.length === 0;
  b.className = bad ? "banner bad" : "banner";
  b.textContent = msgs.join(" ");
}

const CONTROL_TITLE = "the machinery's requests (kubelet probes, /processes polls, /metrics scrapes): counted apart, never in served";

function processTable(pod, maxRecent) {
  if (pod.processes === null) {
    return el("div", { class: "meta" }, pod.processes_error ? `processes: ${pod.processes_error}` : "processes: not polled (pod not Ready)");
  }
  const rows = pod.processes.map((p) => el("tr", { class: p.alive ? "proc" : "proc dead", "data-pid": p.pid },
    el("td", {}, p.pid), el("td", {}, p.index ?? "-"), el("td", {}, p.alive ? fmtAge(p.age_s) : (p.exit || "exited")),
    el("td", {}, p.requests_served ?? "-"),
    el("td", {}, p.requests_recent, " ", el("span", { class: "bar", style: `width:${maxRecent ? Math.round(40 * p.requests_recent / maxRecent) : 0}px` })),
    el("td", { class: "dim" }, p.control_served ?? "-"),
    el("td", {}, p.alive ? "alive" : "dead")));
  // "served" and "last Ns" are the learner's requests; "control" the probes, polls and scrapes.
  const control = el("th", { title: CONTROL_TITLE }, "control");
  return el("table", { class: "procs" },
    el("tr", {}, ...["pid", "slot", "age", "served", `last ${view.window_s}s`].map((h) => el("th", {}, h)), control, el("th", {}, "")), rows);
}

function podBox(wc, pod, maxRecent) {
  const cls = ["pod"];
  if (pod.terminating) cls.push("terminating"); else if (!pod.ready) cls.push("notready");
  const state = pod.terminating ? el("span", { class: "bad" }, "Terminating")
    : pod.ready ? el("span", { class: "ok" }, "Ready") : el("span", { class: "warn" }, pod.waiting_reason || pod.phase);
  const hash = pod.template_hash ? `${pod.template_hash}${pod.up_to_date === false ? " (old)" : pod.up_to_date ? " ✓" : ""}` : "-";
  const alive = (pod.processes || []).filter((p) => p.alive).length;
  return el("div", { class: cls.join(" "), "data-pod": pod.name },
    el("div", {}, el("span", { class: "pname" }, pod.name), " ", state),
    el("div", { class: "meta" }, `phase ${pod.phase} · restarts ${pod.restarts} · node ${pod.node || "-"} · hash ${hash}`),
    el("div", { class: "meta" }, `arbiter pid ${pod.arbiter_pid ?? "?"} · processes ${pod.processes ? alive : "?"}/${wc.processes_per_pod} · last ${view.window_s}s: ${pod.requests_recent} req`),
    processTable(pod, maxRecent),
    el("div", { class: "actions" },
      el("button", { class: "danger", disabled: pod.terminating || null, title: "the operator should replace it",
        onclick: () => post(`/api/wc/${encodeURIComponent(wc.name)}/delete-pod`, { pod: pod.name }) }, "delete pod"),
      wc.lab_mode ? el("button", { class: "danger", disabled: !pod.ready || null, title: "POST /crash: the arbiter should fork a new one",
        onclick: () => post(`/api/wc/${encodeURIComponent(wc.name)}/kill-process`, { pod: pod.name }) }, "kill a process") : null));
}

function wcBox(wc) {
  const podsOk = wc.ready_replicas >= wc.desired;
  // One truth with the pod boxes: the processes this page read in the pods; the operator's
  // status figure (its own reads, up to 10 s older) only beside it, and only when it differs.
  const read = wc.pods.filter((p) => p.processes !== null && !p.terminating);
  const procsShown = read.length ? wc.alive_processes_seen : wc.ready_processes;
  const procsOther = read.length && wc.ready_processes !== null && wc.ready_processes !== procsShown ? wc.ready_processes : null;
  const procsSource = read.length ? `read by this page in ${read.length} pods (GET /processes)` : "the operator's status (readyProcesses)";
  const procsOk = (procsShown ?? 0) >= wc.desired_processes;
  const conds = Object.entries(wc.conditions).map(([k, c]) => `${k}=${c.status}${c.reason ? ` (${c.reason})` : ""}`).join(", ");
  const maxRecent = Math.max(1, ...wc.pods.flatMap((p) => (p.processes || []).map((x) => x.requests_recent)));
  const replicas = el("input", { type: "number", min: 0, max: 100, value: wc.desired, "aria-label": "replicas" });
  const procs = el("input", { type: "number", min: 1, max: 64, value: wc.processes_per_pod, "aria-label": "processes per pod" });
  const loadN = el("input", { type: "number", min: 1, max: 5000, value: 300, "aria-label": "requests" });
  const loadPath = el("input", { type: "text", value: "/work/cpu?ms=20", style: "width:9em", "aria-label": "path" });
  return el("div", { class: "wc", "data-wc": wc.name },
    el("div", { class: "head" },
      el("span", { class: "name" }, `wc/${wc.name}`),
      el("span", { class: "counts" }, "pods ", el("b", { class: podsOk ? "ok" : "warn", "data-k": "pods" }, `${wc.ready_replicas}/${wc.desired}`), " ready"),
      el("span", { class: "counts", title: procsSource }, "processes ", el("b", { class: procsOk ? "ok" : "warn", "data-k": "processes" }, `${procsShown ?? "?"}/${wc.desired_processes}`), ` alive (${wc.processes_per_pod}/pod)`,
        procsOther !== null ? el("span", { class: "dim" }, ` · operator's status: ${procsOther}`) : null),
      el("span", {}, `phase ${wc.phase || "?"}`),
      el("span", { class: "dim" }, conds),
      wc.lab_mode ? el("span", { class: "warn" }, "lab mode") : null,
      el("span", { class: "dim" }, `last ${view.window_s}s: ${wc.requests_recent} req`)),
    el("div", { class: "actions" },
      "replicas ", replicas, el("button", { "data-act": "scale", onclick: () => post(`/api/wc/${encodeURIComponent(wc.name)}/scale`, { replicas: Number(replicas.value) }) }, "scale"),
      " processes/pod ", procs, el("button", { onclick: () => post(`/api/wc/${encodeURIComponent(wc.name)}/processes`, { processes_per_pod: Number(procs.value) }) }, "set"),
      " load ", loadN, loadPath, el("button", { "data-act": "load", title: wc.node_port ? `through NodePort ${wc.node_port}` : "through the API server's service proxy (as workerlab load wc/NAME)",
        onclick: () => post(`/api/wc/${encodeURIComponent(wc.name)}/load`, { requests: Number(loadN.value), path: loadPath.value, concurrency: 8, duration_s: 30 }) }, "start")),
    el("div", { class: "pods" }, nodeLanes(wc, maxRecent)));
}

// One lane per node, each pod inside its node: a stopped machine takes a whole lane with it.
function nodeLanes(wc, maxRecent) {
  const byNode = new Map();
  for (const p of wc.pods) {
    const node = p.node || "(not scheduled)";
    if (!byNode.has(node)) byNode.set(node, []);
    byNode.get(node).push(p);
  }
  const master = view.health.master;
  return [...byNode.keys()].sort().map((node) => el("div", { class: "lane", "data-node": node },
    el("div", { class: "lane-head" }, `node ${node}`,
      master && master.node === node ? el("span", { class: "role" }, "active master") : null,
      master && master.standbys.some((s) => s.node === node) ? el("span", { class: "role dim" }, "standby") : null),
    el("div", { class: "lane-pods" }, byNode.get(node).map((p) => podBox(wc, p, maxRecent)))));
}

function renderMaster(master) {
  const span = document.getElementById("master");
  if (!master || !master.active) { span.textContent = ""; return; }
  const standbys = master.standbys.map((s) => `${s.name}${s.node ? ` on ${s.node}` : ""}`).join(", ");
  span.textContent = `master: ${master.active}${master.node ? ` on ${master.node}` : ""}` +
    (standbys ? ` · standby: ${standbys}` : " · no standby");
}

function renderTimeline(entries) {
  const ol = document.getElementById("timeline");
  ol.replaceChildren(...entries.slice(0, 150).map((e) => el("li", { class: `lvl-${e.level}${e.warning ? " warn" : ""}`, "data-level": e.level, "data-reason": e.reason || "" },
    el("span", { class: "lvl" }, e.level), e.warning ? el("span", { class: "warn-mark" }, "warning ") : null,
    el("span", { class: "dim" }, fmtTime(e.at)), " ",
    e.wc ? el("b", {}, `wc/${e.wc} `) : null, e.message,
    e.heal_s !== null ? el("span", { class: "heal" }, ` healed in ${e.heal_s}s`) : null)));
}

function render() {
  if (!view || refused) return;
  renderBanner(view.health);
  renderMaster(view.health.master);
  if (view.lanes) drawAllLanes(document.getElementById("lanes"), view);
  const box = document.getElementById("clusters");
  if (view.health.auth === false) {
    box.replaceChildren(el("p", { class: "bad", id: "not-authorised" }, "not authorised: the API server refused this kubeconfig's credentials"));
    renderTimeline(view.timeline);
    return;
  }
  // Keep what the learner is typing: skip re-rendering while an input has focus.
  if (document.activeElement && document.activeElement.tagName === "INPUT" && box.contains(document.activeElement)) {
    renderTimeline(view.timeline);
    return;
  }
  box.replaceChildren(...(view.clusters.length ? view.clusters.map(wcBox)
    : [el("p", { class: "dim" }, `no WorkerClusters in namespace ${view.namespace}`)]));
  renderTimeline(view.timeline);
}

function connect() {
  const live = document.getElementById("live");
  const source = new EventSource("/api/stream");
  source.addEventListener("state", (msg) => {
    view = JSON.parse(msg.data);
    receivedAt = Date.now() / 1000;
    const authorised = view.health.auth !== false;
    live.textContent = authorised ? `live · v${view.version}` : "not authorised";
    live.className = authorised ? "pill on" : "pill off";
    render();
  });
  source.onerror = async () => {
    if (refused) { source.close(); return; }
    live.textContent = "reconnecting…"; live.className = "pill off";
    if (source.readyState === EventSource.CLOSED) {
      // An HTTP error (not a dropped connection) ends an EventSource for good: ask why, then
      // either say "not authorised" or open a new stream.
      try { await api("/api/state"); } catch (e) { /* the dashboard is down */ }
      if (!refused) setTimeout(connect, 2000);
    }
  };
}

// --- the lab beside it ----------------------------------------------------------------------
// The lab texts' Markdown, hand-rendered (no library, no build step): headings, paragraphs,
// fenced code kept verbatim, lists (- * 1.) with their continuation lines, pipe tables, and
// inline `code` / **bold**. Text only ever becomes text nodes, never HTML.
function inline(text) {
  const parts = [];
  const re = /`([^`]+)`|\*\*([^*]+)\*\*/g;
  let last = 0, m;
  while ((m = re.exec(text))) {
    if (m.index > last) parts.push(text.slice(last, m.index));
    parts.push(m[1] !== undefined ? el("code", {}, m[1]) : el("b", {}, m[2]));
    last = re.lastIndex;
  }
  if (last < text.length) parts.push(text.slice(last));
  return parts;
}

function tableRow(line) {
  return line.trim().replace(/^\||\|$/g, "").split("|").map((c) => c.trim());
}

function renderMarkdown(md) {
  const out = [];
  const lines = md.split("\n");
  let para = [], code = null, list = null, table = null;
  const flushPara = () => { if (para.length) { out.push(el("p", {}, ...inline(para.join(" ")))); para = []; } };
  const flushList = () => {
    if (list) out.push(el(list.ordered ? "ol" : "ul", {}, ...list.items.map((t) => el("li", {}, ...inline(t)))));
    list = null;
  };
  const flushTable = () => {
    if (table) {
      const [head, ...body] = table.filter((row) => !row.every((c) => /^:?-{3,}:?$/.test(c)));
      out.push(el("table", { class: "md" },
        el("thead", {}, el("tr", {}, ...head.map((c) => el("th", {}, ...inline(c))))),
        el("tbody", {}, ...body.map((row) => el("tr", {}, ...row.map((c) => el("td", {}, ...inline(c))))))));
    }
    table = null;
  };
  const flush = () => { flushPara(); flushList(); flushTable(); };
  for (const line of lines) {
    if (code !== null) {
      if (line.trim().startsWith("```")) { out.push(el("pre", {}, code.join("\n"))); code = null; } else code.push(line);
      continue;
    }
    if (line.trim().startsWith("```")) { flush(); code = []; continue; }
    const h = /^(#{1,4})\s+(.*)$/.exec(line);
    if (h) { flush(); out.push(el(`h${Math.min(6, h[1].length + 2)}`, {}, ...inline(h[2]))); continue; }
    if (!line.trim()) { flush(); continue; }
    if (/^\s*\|.*\|\s*$/.test(line)) { flushPara(); flushList(); (table ||= []).push(tableRow(line)); continue; }
    const item = /^\s*([-*]|\d+\.)\s+(.*)$/.exec(line);
    if (item) {
      flushPara(); flushTable();
      const ordered = /\d/.test(item[1]);
      if (list && list.ordered !== ordered) flushList();
      (list ||= { ordered, items: [] }).items.push(item[2]);
      continue;
    }
    if (list && /^\s+\S/.test(line)) { list.items[list.items.length - 1] += ` ${line.trim()}`; continue; }
    flushList(); flushTable();
    para.push(line.trim());
  }
  flush();
  if (code !== null) out.push(el("pre", {}, code.join("\n")));
  return out;
}

async function showLab(n) {
  const { data } = await api(`/api/labs/${n}`);
  document.getElementById("lab-text").replaceChildren(...renderMarkdown(data.text || data.error || ""));
  document.getElementById("lab-result").replaceChildren();
}

async function initLabs() {
  const { r, data } = await api("/api/labs");
  if (!r.ok) return;
  const select = document.getElementById("lab-select");
  select.replaceChildren(...data.labs.map((l) => el("option", { value: l.number, selected: l.number === data.current || null }, `${l.number}. ${l.title}`)));
  let current = data.current;
  select.addEventListener("change", () => showLab(select.value));
  if (current) showLab(current);
  // Follow `workerlab lab reset N` run in a terminal: the lab begun last becomes the panel's.
  setInterval(async () => {
    const { r: again, data: now } = await api("/api/labs");
    if (!again.ok || now.current === current) return;
    current = now.current;
    select.value = String(current);
    showLab(current);
  }, 3000);
  document.getElementById("lab-check").addEventListener("click", async () => {
    const res = document.getElementById("lab-result");
    res.replaceChildren(el("span", { class: "dim" }, "checking…"));
    const { data: result } = await post(`/api/labs/${select.value}/check`);
    if (result.error && !result.items) { res.replaceChildren(el("div", { class: "bad" }, result.error, result.hint ? ` (hint: ${result.hint})` : "")); return; }
    res.replaceChildren(
      el("div", { class: result.passed ? "ok" : "bad" }, result.passed ? "PASSED" : "not yet"),
      ...(result.items || []).map((i) => el("div", { class: "item" },
        el("span", { class: i.passed ? "ok" : "bad" }, i.passed ? "PASS " : "FAIL "), i.name, i.detail ? el("span", { class: "dim" }, ` (${i.detail})`) : null,
        !i.passed && i.hint ? el("div", { class: "hint" }, `hint: ${i.hint}`) : null)));
  });
}

connect();
initLabs();
setInterval(render, 5000); // ages tick between pushes
