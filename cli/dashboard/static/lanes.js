// The time axis (cli/dashboard/lanes.py says what the data is): one lane per pod, grouped by
// node, coloured by state from created to gone; inside it one thin row per process slot, the
// spans of the pids that held it, an x where one exited and a dot where its arbiter forked the
// next, and the request rate as a small line; above, the masters' marks (the timeline's
// entries) and the API server's outages as a band. Hand-drawn SVG: a few hundred shapes,
// redrawn on each push, no library to vendor and no build step. Used live (app.js) and in a
// recorded file (workerlab dashboard --record), which has no network and no server.
"use strict";

const SVGNS = "http://www.w3.org/2000/svg";
const LANE = { label: 170, width: 760, pod: 12, proc: 7, gap: 5, node: 16, marks: 18 };
const STATE_COLOUR = { starting: "#bdbdbd", ready: "#43a047", notready: "#fb8c00", terminating: "#e57373" };
const LEVEL_COLOUR = { operator: "#1e88e5", kubelet: "#8e24aa", arbiter: "#00897b", you: "#6d4c41", cluster: "#546e7a" };

function svgEl(tag, attrs = {}, ...kids) {
  const node = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== null && v !== undefined) node.setAttribute(k, v);
  for (const kid of kids.flat()) if (kid !== null && kid !== undefined) node.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
  return node;
}

function clock(t) { return new Date(t * 1000).toLocaleTimeString(); }

// The outages of the API server, from the timeline's cluster entries: [[lost, back|null], ...]
function outages(timeline) {
  const bands = [];
  for (const e of [...timeline].sort((a, b) => a.at - b.at)) {
    if (e.reason === "APIServerLost" && !(bands.length && bands[bands.length - 1][1] === null)) bands.push([e.at, null]);
    if (e.reason === "APIServerBack" && bands.length && bands[bands.length - 1][1] === null) bands[bands.length - 1][1] = e.at;
  }
  return bands;
}

// One WorkerCluster's lanes as an <svg>; `onMark(entry)` is called when a mark is clicked.
function drawLanes(view, wcName, onMark) {
  const { from, to } = view.lanes;
  const x = (t) => LANE.label + Math.max(0, Math.min(1, (t - from) / (to - from))) * LANE.width;
  const pods = view.lanes.pods.filter((p) => p.wc === wcName);
  const marks = view.timeline.filter((e) => (e.wc === wcName || e.wc === null) && e.at >= from);
  const kids = [];
  let y = LANE.marks + 4;
  const byNode = new Map();
  for (const p of pods) {
    const node = p.node || "(not scheduled)";
    if (!byNode.has(node)) byNode.set(node, []);
    byNode.get(node).push(p);
  }
  let maxRate = 1;
  for (const p of pods) for (const s of p.processes) for (const [, r] of s.rate) maxRate = Math.max(maxRate, r);
  for (const node of [...byNode.keys()].sort()) {
    kids.push(svgEl("text", { x: 2, y: y + 11, class: "lane-node" }, `node ${node}`));
    y += LANE.node;
    for (const p of byNode.get(node)) {
      const end = p.gone ?? to;
      const firstReady = (p.states.find(([, s]) => s === "ready") || [null])[0];
      const ended = p.states.find(([, s]) => s === "terminating");
      const bars = p.states.map(([t, s], i) => {
        const until = i + 1 < p.states.length ? p.states[i + 1][0] : end;
        return svgEl("rect", { x: x(t), y, width: Math.max(1, x(until) - x(t)), height: LANE.pod, fill: STATE_COLOUR[s] || "#999", class: `state ${s}` },
          svgEl("title", {}, `${p.name}: ${s} from ${clock(t)}${i + 1 < p.states.length || p.gone ? ` to ${clock(until)}` : ""}`));
      });
      const restarts = p.restarts.map((t) => svgEl("path", { d: `M${x(t)},${y - 2} l4,${LANE.pod + 4} l-8,0 z`, class: "restart", fill: LEVEL_COLOUR.kubelet },
        svgEl("title", {}, `${clock(t)} kubelet restarted the container of ${p.name}`)));
      kids.push(svgEl("g", { class: "pod-lane", "data-pod": p.name, "data-created": p.created, "data-ready": firstReady ?? "", "data-ended": ended ? ended[0] : "", "data-gone": p.gone ?? "" },
        svgEl("text", { x: 2, y: y + 10, class: "lane-pod" }, p.name.length > 26 ? `…${p.name.slice(-25)}` : p.name), bars, restarts));
      y += LANE.pod + 2;
      const slots = new Map();
      for (const s of p.processes) {
        const key = s.index ?? `pid${s.pid}`;
        if (!slots.has(key)) slots.set(key, []);
        slots.get(key).push(s);
      }
      for (const key of [...slots.keys()].sort()) {
        const row = [];
        for (const [nth, s] of slots.get(key).sort((a, b) => (a.started ?? 0) - (b.started ?? 0)).entries()) {
          const start = s.started ?? p.created, stop = s.exited ?? end;
          row.push(svgEl("line", { x1: x(start), x2: Math.max(x(start) + 1, x(stop)), y1: y + LANE.proc / 2, y2: y + LANE.proc / 2, class: "proc", "data-pid": s.pid, "data-exited": s.exited ?? "" },
            svgEl("title", {}, `pid ${s.pid} (slot ${s.index ?? "?"}) from ${clock(start)}${s.exited ? ` to ${clock(s.exited)}: ${s.exit}` : ""}`)));
          if (nth > 0 && start > from) { // a re-fork: the slot had a process before this one
            row.push(svgEl("circle", { cx: x(start), cy: y + LANE.proc / 2, r: 2.5, class: "fork", "data-pid": s.pid, fill: LEVEL_COLOUR.arbiter },
              svgEl("title", {}, `${clock(start)} the arbiter of ${p.name} forked pid ${s.pid} into slot ${s.index ?? "?"}`)));
          }
          if (s.exited && s.exited >= from) {
            const cx = x(s.exited), cy = y + LANE.proc / 2;
            row.push(svgEl("path", { d: `M${cx - 3},${cy - 3} l6,6 m0,-6 l-6,6`, class: "exit", "data-pid": s.pid },
              svgEl("title", {}, `${clock(s.exited)} pid ${s.pid} ${s.exit || "exited"}`)));
          }
          if (s.rate.length > 1) {
            const pts = s.rate.filter(([t]) => t >= from).map(([t, r]) => `${x(t).toFixed(1)},${(y + LANE.proc - (r / maxRate) * LANE.proc).toFixed(1)}`);
            if (pts.length > 1) row.push(svgEl("polyline", { points: pts.join(" "), class: "rate" }, svgEl("title", {}, `requests/s of pid ${s.pid} (max on this axis ${maxRate.toFixed(1)}/s)`)));
          }
        }
        kids.push(svgEl("g", { class: "proc-lane", "data-pod": p.name, "data-slot": key }, row));
        y += LANE.proc + 1;
      }
      y += LANE.gap;
    }
  }
  const height = y + 16;
  const bands = outages(view.timeline).map(([lost, back]) => svgEl("rect", { x: x(lost), y: 0, width: Math.max(2, x(back ?? to) - x(lost)), height, class: "outage" },
    svgEl("title", {}, `API server lost ${clock(lost)}${back ? `, back ${clock(back)}` : ", not back yet"}: the masters could not act; the workers kept serving`)));
  const ticks = marks.map((e) => svgEl("g", { class: `mark lvl-${e.level}${e.warning ? " warn" : ""}`, "data-level": e.level, "data-reason": e.reason || "", "data-pod": e.pod || "", "data-heal": e.heal_s ?? "" },
    svgEl("line", { x1: x(e.at), x2: x(e.at), y1: 2, y2: height - 14, stroke: e.warning ? "#c62828" : (LEVEL_COLOUR[e.level] || "#333") }),
    svgEl("circle", { cx: x(e.at), cy: 8, r: 5, fill: e.warning ? "#c62828" : (LEVEL_COLOUR[e.level] || "#333"), tabindex: 0 }),
    svgEl("title", {}, `${clock(e.at)} ${e.level}${e.warning ? " (warning)" : ""}: ${e.message}${e.heal_s !== null ? ` (healed in ${e.heal_s}s)` : ""}`)));
  for (const t of ticks) t.addEventListener("click", () => onMark && onMark(marks[ticks.indexOf(t)]));
  const axis = [0, 0.25, 0.5, 0.75, 1].map((f) => svgEl("text", { x: LANE.label + f * LANE.width, y: height - 2, class: "axis", "text-anchor": f === 0 ? "start" : f === 1 ? "end" : "middle" }, clock(from + f * (to - from))));
  return svgEl("svg", { class: "lanes", width: LANE.label + LANE.width + 8, height, viewBox: `0 0 ${LANE.label + LANE.width + 8} ${height}`, "data-wc": wcName },
    bands, kids, ticks, axis);
}

// Every WorkerCluster's lanes, each with a caption a clicked mark fills.
function drawAllLanes(container, view) {
  const names = [...new Set(view.lanes.pods.map((p) => p.wc).filter(Boolean))].sort();
  container.replaceChildren(...names.map((name) => {
    const caption = document.createElement("div");
    caption.className = "lane-caption";
    const box = document.createElement("div");
    box.className = "lanes-box";
    box.setAttribute("data-wc", name);
    const title = document.createElement("div");
    title.className = "lanes-title";
    title.textContent = `wc/${name}: the last ${Math.round((view.lanes.to - view.lanes.from) / 60)} minutes`;
    box.append(title, drawLanes(view, name, (e) => {
      caption.textContent = `${clock(e.at)} · ${e.level}${e.warning ? " · warning" : ""} · ${e.message}${e.heal_s !== null ? ` · healed in ${e.heal_s}s` : ""}`;
    }), caption);
    return box;
  }));
}
