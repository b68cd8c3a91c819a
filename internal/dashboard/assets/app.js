// chefd ui: the daemon's state, live progress, a timeline, plots and each
// build's details. Every text from the daemon goes in with textContent.
"use strict";

const token = new URLSearchParams(location.search).get("token") || "";
const SVG = "http://www.w3.org/2000/svg";
const PHASES = ["wait", "cook", "context", "build", "cleanup", "images"];

const state = {
  status: null,
  history: [],   // finished jobs, newest first
  live: {},      // id -> {step, crates, last, kind, started}
  selected: 0,   // the job whose details show (0: the newest)
  pinned: false, // the user picked one
  logFor: 0,     // the job whose log #log holds
};

function $(id) { return document.getElementById(id); }

function el(tag, attrs, text) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

function svg(tag, attrs, text) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

function secs(ns) { return (ns || 0) / 1e9; }
function fmt(s) {
  if (s < 60) return s.toFixed(1) + "s";
  return Math.floor(s / 60) + "m" + String(Math.round(s % 60)).padStart(2, "0") + "s";
}
function short(h) { return (h || "").slice(0, 8); }
function t(s) { return s ? Date.parse(s) : 0; }

async function api(path, opts) {
  opts = opts || {};
  opts.headers = Object.assign({ "X-Chefd-Token": token }, opts.headers || {});
  const r = await fetch(path, opts);
  const body = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(body.error || r.status + " " + r.statusText);
  return body;
}

function notice(msg) {
  const n = $("notice");
  n.hidden = !msg;
  n.textContent = msg || "";
}

// ---- data ----

let refreshing = null, again = false;
async function refresh() {
  if (refreshing) { again = true; return refreshing; }
  refreshing = (async () => {
    try {
      const [st, hist] = await Promise.all([api("/api/status"), api("/api/history?n=100")]);
      state.status = st;
      state.history = hist;
      notice("");
    } catch (e) {
      notice("The daemon does not answer: " + e.message);
    }
    render();
  })();
  await refreshing;
  refreshing = null;
  if (again) { again = false; return refresh(); }
}

let timer = 0;
function refreshSoon() {
  clearTimeout(timer);
  timer = setTimeout(refresh, 150);
}

// running jobs: running cooks, the running build, the queued one
function runningJobs() {
  const st = state.status;
  if (!st) return [];
  const jobs = [].concat(st.cooks || []);
  if (st.current) jobs.push(st.current);
  if (st.pending) jobs.push(st.pending);
  return jobs;
}

function allJobs() {
  const seen = new Set();
  const out = [];
  for (const r of runningJobs().concat(state.history)) {
    if (!seen.has(r.id)) { seen.add(r.id); out.push(r); }
  }
  // newest first by when each started (a build queued behind a cook
  // starts after it, though its ID is older)
  const at = (r) => t(r.started) || t(r.queued) || Date.now();
  out.sort((a, b) => (at(b) - at(a)) || (b.id - a.id));
  return out;
}

function estimate(kind) {
  if (kind === "cook") return secs(state.status && state.status.last_cook_ns);
  const d = state.history.filter(r => r.kind === "build" && r.result === "ok").slice(0, 5)
    .map(r => secs(r.duration_ns)).sort((a, b) => a - b);
  return d.length ? d[Math.floor(d.length / 2)] : 0;
}

// ---- rendering ----

function render() {
  const st = state.status;
  if (!st) return;
  $("workspace").textContent = st.daemon && st.daemon.paths ? st.daemon.paths.root : "";
  const badge = $("state");
  badge.textContent = st.state + (st.held ? " (held: " + st.held + ")" : "");
  badge.className = "badge " + st.state;
  $("recipe").textContent = "recipe " + short(st.recipe) + (st.cooked ? " (cooked)" : " (not cooked)") +
    (st.mode ? " · " + st.mode + " mode" : "");
  $("cancel").disabled = !(st.current || st.pending);
  renderRunning();
  renderTimeline();
  renderPlots();
  renderDetail();
}

function renderRunning() {
  const box = $("running");
  box.replaceChildren();
  const jobs = runningJobs();
  if (!jobs.length) { box.append(el("p", { class: "empty" }, "Nothing runs.")); return; }
  for (const r of jobs) {
    const lv = state.live[r.id] || {};
    const row = el("div", { class: "job", "data-id": r.id });
    const queued = r.result === "queued";
    row.append(el("div", {}, "#" + r.id + " " + r.kind + " " + (queued ? "queued" : (lv.step || "running"))));
    const bar = el("div", { class: "bar" });
    const fill = el("div");
    const started = t(r.started);
    const elapsed = started ? (Date.now() - started) / 1000 : 0;
    const est = estimate(r.kind);
    if (!queued && est > 0) fill.style.width = Math.min(100, 100 * elapsed / est).toFixed(0) + "%";
    bar.append(fill);
    row.append(bar);
    let info = queued ? "waiting" + (r.waiting ? " for " + r.waiting : "") : fmt(elapsed);
    if (!queued && est > 0) info += elapsed < est ? " · about " + fmt(est - elapsed) + " left" : " · longer than the last " + fmt(est);
    if (lv.crates) info += " · " + lv.crates + " crates compiled";
    if (r.stuck_since) info += " · possibly stuck";
    row.append(el("div", { class: "info" }, info));
    if (lv.last) row.append(el("div", { class: "last" }, lv.last));
    box.append(row);
  }
}

function phasesOf(r) {
  const ph = (r.phases || []).map(p => ({ name: p.name, d: secs(p.duration_ns) }));
  if (!r.result || r.result === "running" || r.result === "queued") {
    const st = t(r.started) || t(r.queued);
    const known = ph.reduce((a, p) => a + p.d, 0);
    if (st) ph.push({ name: "running", d: Math.max(0, (Date.now() - st) / 1000 - known) });
  }
  return ph;
}

// phaseClass colours a phase: a build's own phases by name; a cook's
// (BuildKit's step titles) by what they do.
function phaseClass(name) {
  if (PHASES.includes(name) || name === "running") return name;
  if (/cargo|compile/i.test(name)) return "build";
  if (/COPY|copy|context|seed|pull/.test(name)) return "context";
  if (/export|tag|keep/i.test(name)) return "images";
  return "other";
}

function renderTimeline() {
  const jobs = allJobs().slice(0, 40);
  const box = $("timeline");
  box.replaceChildren();
  if (!jobs.length) { box.append(el("p", { class: "empty" }, "No build yet.")); return; }
  const now = Date.now();
  const start = (r) => t(r.started) || t(r.queued) || now;
  const end = (r) => t(r.finished) || now;
  let t0 = Math.min(...jobs.map(r => t(r.queued) || start(r)));
  let t1 = Math.max(now, ...jobs.map(end));
  if (t1 - t0 < 10000) t1 = t0 + 10000;
  const W = 1000, L = 250, R = 10, rowH = 16, top = 18;
  const H = top + rowH * jobs.length + 4;
  const x = (ms) => L + (W - L - R) * (ms - t0) / (t1 - t0);
  const s = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": "timeline of builds and cooks" });
  for (let i = 0; i <= 4; i++) {
    const ms = t0 + (t1 - t0) * i / 4;
    s.append(svg("line", { class: "gridline", x1: x(ms), x2: x(ms), y1: 12, y2: H }));
    s.append(svg("text", { class: "axis", x: x(ms), y: 10, "text-anchor": i === 4 ? "end" : "middle" },
      new Date(ms).toLocaleTimeString()));
  }
  jobs.forEach((r, i) => {
    const y = top + i * rowH;
    const g = svg("g", { class: "row result-" + (r.result || "running") + (r.id === state.selected ? " selected" : ""), "data-id": r.id });
    const total = secs(r.duration_ns);
    g.append(svg("text", { class: "label", x: 4, y: y + 11 },
      `#${r.id} ${r.kind} ${r.result}` + (total ? " " + fmt(total) : "")));
    // the job's phases, one after another from its queue time
    let at = t(r.queued) || start(r);
    for (const p of phasesOf(r)) {
      const w = Math.max(1.5, x(at + p.d * 1000) - x(at));
      const cls = phaseClass(p.name);
      const rect = svg("rect", { class: "phase phase-" + cls, x: x(at), y: y + 2, width: w, height: rowH - 5, "data-phase": p.name });
      rect.append(svg("title", {}, `#${r.id} ${p.name} ${fmt(p.d)}`));
      g.append(rect);
      at += p.d * 1000;
    }
    g.addEventListener("click", () => select(r.id, true));
    s.append(g);
  });
  box.append(s);
  const lg = $("legend");
  if (!lg.childElementCount) {
    for (const p of PHASES.concat(["running"])) {
      const sw = svg("svg", { width: 10, height: 10 });
      sw.append(svg("rect", { class: "phase-" + p, width: 10, height: 10 }));
      const span = el("span");
      span.append(sw, document.createTextNode(p));
      lg.append(span);
    }
  }
}

function plot(box, points, cls, label) {
  box.replaceChildren();
  if (!points.length) { box.append(el("p", { class: "empty" }, "None yet.")); return; }
  const W = 500, H = 180, L = 40, B = 20, T = 8, R = 8;
  const xs = points.map(p => p.x), ys = points.map(p => p.y);
  let x0 = Math.min(...xs), x1 = Math.max(...xs);
  if (x1 - x0 < 1000) { x0 -= 500; x1 += 500; }
  const y1 = Math.max(1, ...ys) * 1.1;
  const px = (v) => L + (W - L - R) * (v - x0) / (x1 - x0);
  const py = (v) => H - B - (H - B - T) * v / y1;
  const s = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": label });
  for (let i = 0; i <= 4; i++) {
    const v = y1 * i / 4;
    s.append(svg("line", { class: "gridline", x1: L, x2: W - R, y1: py(v), y2: py(v) }));
    s.append(svg("text", { class: "axis", x: L - 4, y: py(v) + 3, "text-anchor": "end" }, v.toFixed(v < 10 ? 1 : 0)));
  }
  s.append(svg("text", { class: "axis", x: L, y: H - 4 }, new Date(x0).toLocaleTimeString()));
  s.append(svg("text", { class: "axis", x: W - R, y: H - 4, "text-anchor": "end" }, new Date(x1).toLocaleTimeString()));
  const sorted = points.slice().sort((a, b) => a.x - b.x);
  s.append(svg("polyline", { class: "plotline", points: sorted.map(p => px(p.x) + "," + py(p.y)).join(" ") }));
  for (const p of sorted) {
    const c = svg("circle", { class: "point " + cls(p), cx: px(p.x), cy: py(p.y), r: 4, "data-id": p.id });
    c.append(svg("title", {}, `#${p.id} ${fmt(p.y)} (${p.result})`));
    c.addEventListener("click", () => select(p.id, true));
    s.append(c);
  }
  box.append(s);
}

function renderPlots() {
  const done = state.history.filter(r => r.finished && (r.result === "ok" || r.result === "failed"));
  // save to image: from the change (the build's queue time) to its image
  plot($("plot-builds"), done.filter(r => r.kind === "build")
    .map(r => ({ id: r.id, x: t(r.finished), y: (t(r.finished) - t(r.queued)) / 1000, result: r.result })),
  p => p.result, "save-to-image time of each build");
  plot($("plot-cooks"), done.filter(r => r.kind === "cook")
    .map(r => ({ id: r.id, x: t(r.finished), y: secs(r.duration_ns), result: r.result })),
  p => "cook " + p.result, "time of each cook");
}

function fill(list, items) {
  list.replaceChildren();
  if (!items || !items.length) { list.append(el("li", { class: "empty" }, "—")); return; }
  for (const i of items) list.append(el("li", {}, i));
}

function why(r) {
  const out = [];
  if (r.trigger === "startup") out.push("daemon started");
  if (r.trigger === "request" && !r.changed_count && !(r.recipe_diff || []).length) out.push("requested");
  if (r.trigger === "retry") out.push("retry after the engine came back");
  if (r.trigger === "watch") out.push("files changed");
  if (r.batches > 1) out.push(r.batches + " batches of changes");
  if (r.requests) out.push(r.requests + " request(s)");
  if (r.seed) out.push("cook seeded from " + short(r.seed));
  return out;
}

function renderDetail() {
  const jobs = allJobs();
  if (!state.pinned && jobs.length) state.selected = jobs[0].id;
  const r = jobs.find(j => j.id === state.selected);
  if (!r) return;
  $("detail-title").textContent = `#${r.id} ${r.kind} — ${r.result}` + (r.duration_ns ? " in " + fmt(secs(r.duration_ns)) : "");
  const sum = $("summary");
  sum.replaceChildren();
  const c = r.compiled || {};
  const parts = [`recipe ${short(r.recipe)}`];
  if (r.mode) parts.push(r.mode + " mode");
  parts.push(`compiled ${c.third_party || 0} third-party, ${c.local || 0} local`);
  if (r.seed) parts.push("delta from " + short(r.seed));
  if (r.image_id) parts.push(`${r.image} ${r.image_id.slice(0, 19)}`);
  sum.append(el("div", {}, parts.join(" · ")));
  if (r.error) sum.append(el("div", { class: "error" }, r.error));
  fill($("why"), why(r));
  fill($("diff"), r.recipe_diff);
  const changed = (r.changed || []).slice();
  if (r.changed_count > changed.length) changed.push(`… and ${r.changed_count - changed.length} more`);
  fill($("changed"), changed);
  const tb = $("phases").tBodies[0];
  tb.replaceChildren();
  for (const p of r.phases || []) {
    const tr = el("tr");
    tr.append(el("td", {}, p.name), el("td", {}, fmt(secs(p.duration_ns))));
    tb.append(tr);
  }
  let images = (r.images || []).map(i => `${i.image} ${i.changed ? "changed" : "unchanged"} (${i.reason})`);
  if (!images.length && r.image_id) {
    images = [`${r.image} ${r.unchanged ? "unchanged (binaries identical)" : "new image ID"}`];
  }
  fill($("images"), images);
  if (state.logFor !== r.id) loadLog(r);
}

async function loadLog(r) {
  state.logFor = r.id;
  const pre = $("log");
  pre.textContent = "";
  let lines = [], note = "";
  try {
    const l = await api("/api/log?id=" + r.id);
    lines = l.lines || [];
    if (l.dropped) note = `(${l.dropped} earlier lines not kept)`;
    if (!l.seen) {
      lines = r.output || [];
      note = lines.length ? "(the last lines of its output; the dashboard was not running during it)" : "(the dashboard was not running during it)";
    }
  } catch (e) {
    note = "(" + e.message + ")";
  }
  if (state.logFor !== r.id) return;
  $("log-note").textContent = note;
  pre.textContent = lines.join("\n") + (lines.length ? "\n" : "");
  pre.scrollTop = pre.scrollHeight;
}

function select(id, pinned) {
  state.selected = id;
  state.pinned = pinned;
  render();
}

// ---- live events ----

// progressLine: the line of --progress plain (progress.PlainLine, the
// hub's kept logs), but that the step's name is BuildKit's as it came
function progressLine(p) {
  switch (p.kind) {
  case "log": return "   " + (p.text || "");
  case "error": return "error: " + (p.text || "");
  case "warning": return "warning: " + (p.text || "");
  case "step":
    if (p.cached) return "step: " + p.step + " CACHED";
    if (p.done) return "step: " + p.step + " done in " + secs(p.duration_ns).toFixed(1) + "s";
    return "step: " + p.step;
  }
  return "";
}

function onEvent(ev) {
  if (ev.type === "dashboard.disconnected") { $("conn").textContent = "daemon away"; $("conn").className = "conn down"; return; }
  if (ev.type === "dashboard.connected") { $("conn").textContent = ""; $("conn").className = "conn"; refreshSoon(); return; }
  if (ev.type === "build.progress" || ev.type === "cook.progress") {
    const p = ev.progress || {};
    const lv = state.live[ev.id] || (state.live[ev.id] = { crates: 0 });
    const line = progressLine(p).replace(/\s+$/, "");
    if (p.kind === "step" && !p.done) lv.step = p.step;
    if (/^\s*Compiling /.test(line)) lv.crates++;
    if (line) lv.last = line;
    if (line && state.logFor === ev.id) {
      const pre = $("log");
      const atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
      pre.append(document.createTextNode(line + "\n"));
      if (atEnd) pre.scrollTop = pre.scrollHeight;
    }
    renderRunningSoon();
    return;
  }
  if (ev.type === "build.done" || ev.type === "cook.done") delete state.live[ev.id];
  refreshSoon();
}

let runTimer = 0;
function renderRunningSoon() {
  if (runTimer) return;
  runTimer = setTimeout(() => { runTimer = 0; renderRunning(); }, 250);
}

function connect() {
  const es = new EventSource("/api/events?token=" + encodeURIComponent(token));
  es.addEventListener("hello", (e) => {
    const h = JSON.parse(e.data);
    $("conn").textContent = h.connected ? "" : "daemon away";
    $("conn").className = h.connected ? "conn" : "conn down";
    refresh();
  });
  es.onmessage = (e) => { try { onEvent(JSON.parse(e.data)); } catch (err) { console.error(err); } };
  es.onerror = () => { $("conn").textContent = "reconnecting…"; $("conn").className = "conn down"; };
}

// ---- actions ----

async function action(path, body, button) {
  button.disabled = true;
  try {
    const res = await api(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
    if (res.record) select(res.record.id, true);
    notice("");
  } catch (e) {
    notice(e.message);
  } finally {
    button.disabled = false;
    refreshSoon();
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("build-now").addEventListener("click", (e) => action("/api/build", {}, e.target));
  $("cancel").addEventListener("click", (e) => {
    const st = state.status || {};
    const r = st.current || st.pending;
    action("/api/cancel", { id: r ? r.id : 0 }, e.target);
  });
  connect();
  refresh();
  setInterval(() => { if (runningJobs().length) { renderRunning(); renderTimeline(); } }, 1000);
});
