"use strict";
// index.html's views, drawn from the JSON in #orch-data. Every text goes in through textContent or
// setAttribute, never innerHTML, so task names, messages and diffs cannot inject markup.
(function () {
  const DATA = JSON.parse(document.getElementById("orch-data").textContent);
  const COLOURS = {passed: "#3a9d5d", failed: "#d1453b", skipped: "#b0b0b0", up_to_date: "#8cb4d9"};
  const SVGNS = "http://www.w3.org/2000/svg";
  const byId = new Map(DATA.tasks.map(t => [t.id, t]));
  const onPath = new Set(DATA.critical_path);
  const pathEdges = new Set();
  for (let i = 1; i < DATA.critical_path.length; i++) pathEdges.add(DATA.critical_path[i - 1] + "\u0000" + DATA.critical_path[i]);

  function el(tag, attrs, text) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }
  function svg(tag, attrs, text) {
    const node = document.createElementNS(SVGNS, tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }
  const label = o => String(o).replace(/_/g, " ");
  const secs = v => (v === null || v === undefined) ? "-" : (v < 10 ? v.toFixed(3) : v.toFixed(1)) + " s";

  // -- header ---------------------------------------------------------------------------------
  function drawCounts() {
    const box = document.getElementById("counts");
    for (const outcome of ["passed", "failed", "skipped", "up_to_date"]) {
      const n = DATA.run.counts[outcome] || 0;
      box.appendChild(el("span", {"class": "o-" + outcome, "data-outcome": outcome, "data-count": n}, n + " " + label(outcome)));
    }
    if (DATA.critical_path.length) {
      box.appendChild(el("div", {"id": "critical-path", "class": "note"}, "critical path: " + DATA.critical_path.join(" \u2192 ")));
    }
  }

  // -- the timeline: one lane per worker -------------------------------------------------------
  function drawTimeline() {
    const view = document.getElementById("timeline-view");
    const timed = DATA.tasks.filter(t => t.spans.length);
    if (!timed.length) { view.appendChild(el("p", {}, "no task ran")); return; }
    const lanes = [...new Set(timed.map(t => t.worker))].sort();
    // the axis starts at the first task's start, not the session's
    const origin = Math.min(...timed.map(t => t.spans[0][0]));
    const end = Math.max(Math.max(...timed.map(t => Math.max(...t.spans.map(s => s[1] || 0)))) - origin, 1e-3);
    const LEFT = 70, ROW = 26, TOP = 40, W = Math.max(900, Math.min(4000, timed.length * 4));
    const scale = (W - LEFT - 20) / end;
    const height = TOP + ROW * lanes.length + 30;
    const root = svg("svg", {width: W, height: height, id: "timeline-svg"});
    // phase bands: from a phase's first start to its last end, behind the bars
    DATA.phases.forEach((phase, i) => {
      const ts = timed.filter(t => t.phase === phase.id);
      if (!ts.length) return;
      const a = Math.min(...ts.map(t => t.spans[0][0])), b = Math.max(...ts.map(t => t.spans[t.spans.length - 1][1]));
      const x = LEFT + (a - origin) * scale, w = Math.max(2, (b - a) * scale);
      root.appendChild(svg("rect", {x: x, y: TOP - 14, width: w, height: height - TOP, "class": "band",
        fill: i % 2 ? "#3b6fb6" : "#b6843b", "data-phase": phase.id}));
      root.appendChild(svg("text", {x: x + 2, y: TOP - 18, "class": "phase-label"}, "phase " + phase.id + " " + phase.name));
    });
    const step = end / 8;
    for (let i = 0; i <= 8; i++) {  // a time axis: eight ticks
      const x = LEFT + i * step * scale;
      root.appendChild(svg("line", {x1: x, x2: x, y1: TOP - 4, y2: height - 16, stroke: "#e4e4e4"}));
      root.appendChild(svg("text", {x: x, y: height - 4, "text-anchor": "middle", "class": "tick"}, secs(i * step)));
    }
    lanes.forEach((lane, i) => root.appendChild(svg("text", {x: 4, y: TOP + i * ROW + 16, "class": "lane"}, lane)));
    for (const t of timed) {
      const row = lanes.indexOf(t.worker);
      t.spans.forEach((s, n) => {
        const x = LEFT + (s[0] - origin) * scale, w = Math.max(2, ((s[1] || s[0]) - s[0]) * scale);
        const bar = svg("rect", {x: x, y: TOP + row * ROW + 3, width: w, height: ROW - 8, rx: 2, fill: COLOURS[s[2]] || "#999",
          "class": "bar" + (onPath.has(t.id) ? " crit" : ""), "data-task": t.id, "data-attempt": n + 1});
        bar.appendChild(svg("title", {}, t.id + " " + t.name + ": " + label(s[2]) + (t.spans.length > 1 ? " (attempt " + (n + 1) + ")" : "") +
          ", " + secs((s[1] || s[0]) - s[0]) + (t.message ? " \u2014 " + t.message : "")));
        bar.addEventListener("click", () => openTask(t.id));
        root.appendChild(bar);
      });
    }
    view.appendChild(root);
  }

  // -- the graph: phases as columns, groups as boxes --------------------------------------------
  const collapsed = new Set();
  let zoom = 1;
  function drawGraph() {
    const view = document.getElementById("graph-view");
    view.textContent = "";
    const COLW = 320, BOXW = 290, ROWH = 18, HEAD = 22, GAP = 14, TOP = 34;
    const fit = (text, px) => { const n = Math.floor(px / 6.3); return text.length > n ? text.slice(0, n - 1) + "\u2026" : text; };
    const pos = new Map(), boxes = new Map();
    let height = 0;
    DATA.phases.forEach((phase, col) => {
      let y = TOP;
      for (const group of phase.groups) {
        const ids = group.tasks.filter(id => byId.has(id));
        if (!ids.length) continue;
        const key = phase.id + "." + group.id;
        const folded = collapsed.has(key);
        const h = HEAD + (folded ? ROWH : ids.length * ROWH) + 6;
        const x = 10 + col * COLW;
        boxes.set(key, {x: x, y: y, h: h, group: group, phase: phase, ids: ids, folded: folded});
        ids.forEach((id, i) => pos.set(id, {x: x + 8, y: folded ? y + HEAD : y + HEAD + i * ROWH, folded: folded, box: key}));
        y += h + GAP;
      }
      height = Math.max(height, y);
    });
    const width = 20 + DATA.phases.length * COLW;
    const root = svg("svg", {width: width * zoom, height: height * zoom, viewBox: "0 0 " + width + " " + height, id: "graph-svg"});
    DATA.phases.forEach((phase, col) => root.appendChild(svg("text", {x: 10 + col * COLW, y: 16, "class": "lane"},
      "phase " + phase.id + ": " + phase.name + (phase.depends_on.length ? "  (after " + phase.depends_on.join(", ") + ")" : ""))));
    const edges = svg("g", {"pointer-events": "none"});  // drawn over the boxes, appended at the end
    for (const [key, b] of boxes) {
      const g = svg("g", {"class": "groupbox", "data-group": key});
      g.appendChild(svg("rect", {x: b.x, y: b.y, width: BOXW, height: b.h, rx: 4, fill: "#fafafa", stroke: "#bbb"}));
      const full = b.group.id + ": " + b.group.name + (b.group.depends_on.length ? " (after " + b.group.depends_on.join(", ") + ")" : "");
      const title = svg("text", {x: b.x + 6, y: b.y + 15, "class": "gtitle"}, (b.folded ? "\u25b8 " : "\u25be ") + fit(full, BOXW - 30));
      title.appendChild(svg("title", {}, full + (b.folded ? " (click to unfold)" : " (click to fold)")));
      title.addEventListener("click", () => { collapsed.has(key) ? collapsed.delete(key) : collapsed.add(key); drawGraph(); });
      g.appendChild(title);
      if (b.folded) {
        const counts = {};
        b.ids.forEach(id => { const o = byId.get(id).outcome; counts[o] = (counts[o] || 0) + 1; });
        let x = b.x + 8;
        for (const [o, n] of Object.entries(counts)) {
          g.appendChild(svg("rect", {x: x, y: b.y + HEAD + 3, width: 10, height: 10, fill: COLOURS[o] || "#999"}));
          g.appendChild(svg("text", {x: x + 13, y: b.y + HEAD + 12}, n + " " + label(o)));
          x += 80;
        }
      } else {
        for (const id of b.ids) {
          const t = byId.get(id), p = pos.get(id);
          const node = svg("g", {"class": "node", "data-task": id});
          node.appendChild(svg("rect", {x: p.x, y: p.y + 2, width: BOXW - 16, height: ROWH - 4, rx: 3, fill: COLOURS[t.outcome] || "#999",
            "class": onPath.has(id) ? "crit" : ""}));
          node.appendChild(svg("text", {x: p.x + 4, y: p.y + 13, fill: "#fff"}, fit(id + " " + (t.name !== id ? t.name : ""), BOXW - 26)));
          node.appendChild(svg("title", {}, id + " " + t.name + ": " + label(t.outcome)));
          node.addEventListener("click", () => openTask(id));
          g.appendChild(node);
        }
      }
      root.appendChild(g);
    }
    // edges as declared: task -> task; a group's depends_on as box -> box (not one line per task pair)
    const anchor = id => { const p = pos.get(id); return p ? {x1: p.x + BOXW - 16, x0: p.x, y: p.y + ROWH / 2} : null; };
    const line = (a, b, cls) => {
      let d;
      if (b.x0 > a.x1) {  // to a later column: from the right side to the left side
        const mx = (a.x1 + b.x0) / 2;
        d = "M" + a.x1 + " " + a.y + " C" + mx + " " + a.y + " " + mx + " " + b.y + " " + b.x0 + " " + b.y;
      } else {  // within a column: a bow on the left side
        const x = Math.min(a.x0 !== undefined ? a.x0 : a.x1, b.x0), bow = x - 6 - Math.min(40, Math.abs(b.y - a.y) / 4);
        d = "M" + x + " " + a.y + " C" + bow + " " + a.y + " " + bow + " " + b.y + " " + x + " " + b.y;
      }
      edges.appendChild(svg("path", {d: d, "class": "edge " + cls}));
    };
    for (const t of DATA.tasks) {
      for (const dep of t.declared) {
        const a = anchor(dep), b = anchor(t.id);
        if (a && b) line(a, b, pathEdges.has(dep + "\u0000" + t.id) ? "critedge" : "");
      }
    }
    for (const [key, b] of boxes) {
      for (const dep of b.group.depends_on) {
        const other = boxes.get(b.phase.id + "." + dep);
        if (other) line({x1: other.x + BOXW, y: other.y + 10}, {x0: b.x, y: b.y + 10}, "after");
      }
    }
    for (let i = 1; i < DATA.critical_path.length; i++) {  // the path's steps implied by phase or group order
      const dep = DATA.critical_path[i - 1], id = DATA.critical_path[i];
      if (!(byId.get(id).declared || []).includes(dep)) {
        const a = anchor(dep), b = anchor(id);
        if (a && b) line(a, b, "critedge");
      }
    }
    root.appendChild(edges);
    view.appendChild(root);
  }

  // -- the table --------------------------------------------------------------------------------
  function fillSelect(id, values) {
    const select = document.getElementById(id);
    for (const v of values) select.appendChild(el("option", {value: v}, label(v)));
    select.addEventListener("change", filterTable);
  }
  function drawTable() {
    const body = document.querySelector("#task-table tbody");
    for (const t of DATA.tasks) {
      const tr = el("tr", {"data-task": t.id, "data-outcome": t.outcome, "data-phase": t.phase, "data-tags": JSON.stringify(t.tags)});
      tr.appendChild(el("td", {"class": "id"}, t.id));
      tr.appendChild(el("td", {}, t.name));
      tr.appendChild(el("td", {}, t.phase));
      tr.appendChild(el("td", {}, t.group));
      const out = el("td", {});
      out.appendChild(el("span", {"class": "dot o-" + t.outcome}));
      out.appendChild(document.createTextNode(label(t.outcome)));
      tr.appendChild(out);
      tr.appendChild(el("td", {}, t.attempts));
      tr.appendChild(el("td", {}, secs(t.duration)));
      tr.appendChild(el("td", {}, t.worker));
      tr.appendChild(el("td", {"class": "why", title: t.reason || t.message}, t.reason || t.message));
      tr.addEventListener("click", () => openTask(t.id));
      body.appendChild(tr);
    }
    fillSelect("filter-outcome", [...new Set(DATA.tasks.map(t => t.outcome))]);
    fillSelect("filter-phase", DATA.phases.map(p => p.id));
    fillSelect("filter-tag", [...new Set(DATA.tasks.flatMap(t => t.tags))].sort());
    filterTable();
  }
  function filterTable() {
    const outcome = document.getElementById("filter-outcome").value;
    const phase = document.getElementById("filter-phase").value;
    const tag = document.getElementById("filter-tag").value;
    let shown = 0;
    for (const tr of document.querySelectorAll("#task-table tbody tr")) {
      const t = byId.get(tr.getAttribute("data-task"));
      const ok = (!outcome || t.outcome === outcome) && (!phase || t.phase === phase) && (!tag || t.tags.includes(tag));
      tr.hidden = !ok;
      shown += ok ? 1 : 0;
    }
    document.getElementById("shown").textContent = shown + " of " + DATA.tasks.length + " tasks";
  }

  // -- a task's detail ----------------------------------------------------------------------------
  function diffBlock(text) {
    const pre = el("pre", {"class": "diff"});
    for (const ln of text.split("\n")) {
      const cls = ln.startsWith("+++") || ln.startsWith("---") ? "file" : ln.startsWith("@@") ? "hunk" :
        ln.startsWith("+") ? "add" : ln.startsWith("-") ? "del" : "";
      pre.appendChild(el("span", cls ? {"class": cls} : {}, ln + "\n"));
    }
    return pre;
  }
  function openTask(id) {
    const t = byId.get(id);
    const box = document.getElementById("detail-body");
    box.textContent = "";
    box.setAttribute("data-task", id);
    box.appendChild(el("h3", {}, t.id + " " + t.name));
    const facts = el("dl", {"class": "facts"});
    const fact = (k, v) => { facts.appendChild(el("dt", {}, k)); facts.appendChild(el("dd", {}, v)); };
    fact("outcome", label(t.outcome) + (onPath.has(id) ? " (on the critical path)" : ""));
    fact("phase / group", t.phase + " / " + t.group);
    fact("type", t.type);
    fact(t.outcome === "passed" || t.outcome === "failed" ? "why it ran" : "why", t.reason || t.message || "-");
    fact("worker", t.worker);
    const past = t.history.filter(h => h[2] !== null && h[1] !== "skipped");
    const mean = past.length ? past.reduce((a, h) => a + h[2], 0) / past.length : null;
    fact("duration", secs(t.duration) + (mean !== null ? " (mean of " + past.length + " recorded runs: " + secs(mean) + ")" : ""));
    if (t.needs.length) fact("needs", t.needs.join(", "));
    if (t.tags.length) fact("tags", t.tags.join(", "));
    box.appendChild(facts);
    box.appendChild(el("h4", {}, "attempts"));
    const ol = el("ol", {"class": "attempts"});
    t.messages.forEach((m, i) => ol.appendChild(el("li", {}, (t.spans[i] ? label(t.spans[i][2]) + ": " : "") + (m || "(no message)"))));
    box.appendChild(ol);
    if (t.changed.length) { box.appendChild(el("h4", {}, "changed files")); const ul = el("ul", {}); t.changed.forEach(c => ul.appendChild(el("li", {}, c))); box.appendChild(ul); }
    if (t.diff) { box.appendChild(el("h4", {}, "diff")); box.appendChild(diffBlock(t.diff)); }
    if (t.output) { box.appendChild(el("h4", {}, "output (tail)")); box.appendChild(el("pre", {"class": "output"}, t.output)); }
    if (t.stderr) { box.appendChild(el("h4", {}, "stderr (tail)")); box.appendChild(el("pre", {"class": "output"}, t.stderr)); }
    if (t.history.length) {
      box.appendChild(el("h4", {}, "history"));
      const ul = el("ul", {});
      t.history.forEach(h => ul.appendChild(el("li", {}, "run " + h[0] + ": " + (h[1] === null ? "not run" : label(h[1]) + ", " + secs(h[2])))));
      box.appendChild(ul);
    }
    document.getElementById("detail").hidden = false;
  }

  // -- history --------------------------------------------------------------------------------------
  function drawHistory() {
    const view = document.getElementById("history-view");
    if (!DATA.history.length) { view.appendChild(el("p", {}, "no earlier runs recorded in .orch/state.db")); return; }
    const runs = el("table", {id: "history-runs"});
    const head = el("tr", {});
    ["run", "started", "outcome", "duration"].forEach(h => head.appendChild(el("th", {}, h)));
    runs.appendChild(head);
    for (const r of DATA.history) {
      const tr = el("tr", {"data-run": r.number});
      [r.number, r.started, r.outcome || "-", secs(r.duration)].forEach(v => tr.appendChild(el("td", {}, v)));
      runs.appendChild(tr);
    }
    view.appendChild(runs);
    view.appendChild(el("h3", {}, "task durations by run"));
    const grid = el("table", {id: "history-tasks"});
    const top = el("tr", {});
    top.appendChild(el("th", {}, "task"));
    DATA.history.forEach(r => top.appendChild(el("th", {}, "run " + r.number)));
    grid.appendChild(top);
    for (const t of DATA.tasks) {
      const tr = el("tr", {});
      tr.appendChild(el("td", {}, t.id));
      t.history.forEach(h => {
        const td = el("td", {}, h[1] === null ? "" : secs(h[2]));
        if (h[1]) { td.title = label(h[1]); td.className = "h-" + h[1]; }
        tr.appendChild(td);
      });
      grid.appendChild(tr);
    }
    view.appendChild(grid);
  }

  function setZoom(factor) { zoom = Math.min(4, Math.max(0.1, zoom * factor)); drawGraph(); }
  document.getElementById("zoom-in").addEventListener("click", () => setZoom(1.25));
  document.getElementById("zoom-out").addEventListener("click", () => setZoom(0.8));
  document.getElementById("collapse-all").addEventListener("click", () => {
    DATA.phases.forEach(p => p.groups.forEach(g => collapsed.add(p.id + "." + g.id))); drawGraph();
  });
  document.getElementById("expand-all").addEventListener("click", () => { collapsed.clear(); drawGraph(); });
  document.getElementById("detail-close").addEventListener("click", () => { document.getElementById("detail").hidden = true; });
  // a large plan starts with its groups folded and the graph zoomed out, so the page stays usable
  if (DATA.tasks.length > 300) {
    DATA.phases.forEach(p => p.groups.forEach(g => { if (g.tasks.length > 20) collapsed.add(p.id + "." + g.id); }));
  }
  drawCounts();
  drawTimeline();
  drawGraph();
  drawTable();
  drawHistory();
  document.body.setAttribute("data-ready", "1");
})();
