"""The report page's stylesheet and script, inlined into every report (no files beside it, no network).

The script reads the JSON in ``<script id="report-data">`` (see :mod:`rnnlab.inspect.report` for its keys),
draws the two coloured texts, fills the unit picker, and answers hovering, clicking and the arrow keys.
Activations arrive as base64 ``uint8`` (one byte per character and unit, ``lo + q / 255 * (hi - lo)``), are
decoded only when a unit is picked, and cached.
"""

STYLE = r"""
:root { --fg: #1b1f24; --muted: #5b6470; --line: #d8dde3; --bg: #ffffff; --panel: #f6f8fa; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg);
       background: var(--bg); }
header { padding: 14px 22px 8px; border-bottom: 1px solid var(--line); }
h1 { font-size: 19px; margin: 0 0 6px; }
h2 { font-size: 16px; margin: 22px 0 8px; }
h3 { font-size: 14px; margin: 10px 0 4px; }
.facts { display: flex; flex-wrap: wrap; gap: 4px 22px; margin: 0; }
.facts div { white-space: nowrap; } .facts dt { display: inline; color: var(--muted); }
.facts dd { display: inline; margin: 0 0 0 4px; font-weight: 600; }
nav { padding: 6px 22px; border-bottom: 1px solid var(--line); font-size: 13px; }
nav a { margin-right: 14px; color: #0b5cad; text-decoration: none; }
.layout { display: grid; grid-template-columns: minmax(0, 1fr) 300px; gap: 18px; padding: 0 22px 40px; }
main { min-width: 0; }
aside { position: sticky; top: 10px; align-self: start; margin-top: 22px; padding: 10px 12px; background: var(--panel);
        border: 1px solid var(--line); border-radius: 6px; font-size: 13px; }
.controls { display: flex; flex-wrap: wrap; gap: 8px 14px; align-items: center; margin-bottom: 8px; }
.controls label { color: var(--muted); } select { font: inherit; padding: 2px 4px; }
.legend { display: inline-flex; align-items: center; gap: 6px; color: var(--muted); font-size: 12px; }
.bar { width: 150px; height: 12px; border: 1px solid var(--line); }
.bar.div { background: linear-gradient(to right, #2166ac, #f7f7f7, #b2182b); }
.bar.seq { background: linear-gradient(to right, #ffffff, #fdae61, #d7301f, #7f0000); }
.text { font: 13px/1.55 ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace; white-space: pre-wrap;
        word-break: break-all; border: 1px solid var(--line); border-radius: 6px; padding: 8px 10px;
        max-height: 62vh; overflow-y: auto; outline: none; }
.text:focus { border-color: #0b5cad; }
.text span { cursor: default; }
.text span.nl { color: #8a94a0; }
.text span.cur { outline: 2px solid #111; outline-offset: -1px; }
.note { color: var(--muted); font-size: 12px; margin: 4px 0; }
.features { display: grid; grid-template-columns: repeat(auto-fill, minmax(250px, 1fr)); gap: 10px 18px; }
table.rank { border-collapse: collapse; width: 100%; font-size: 12.5px; }
table.rank th, table.rank td { padding: 2px 6px; border-bottom: 1px solid var(--line); text-align: right; }
table.rank th:nth-child(3), table.rank td:nth-child(3) { text-align: center; }
table.rank tbody tr { cursor: pointer; } table.rank tbody tr:hover { background: #eef4fb; }
table.rank tr.on { background: #dbe9f8; }
table.rank button { font: inherit; font-size: 12px; padding: 0 6px; cursor: pointer; }
.charts { display: flex; flex-wrap: wrap; gap: 8px 16px; align-items: flex-start; }
svg.chart { background: #fff; } svg .plot-bg { fill: #fcfcfd; stroke: var(--line); } svg .grid { stroke: #eceff2; }
svg .axis { stroke: #888; } svg .diag { stroke: #bbb; stroke-dasharray: 4 3; }
svg .tick { font-size: 10.5px; fill: #555; }
svg .label { font-size: 11.5px; fill: #333; } svg .title { font-size: 13px; font-weight: 600; fill: #222; }
.swatch { display: inline-block; width: 10px; height: 10px; border-radius: 5px; margin: 0 4px 0 10px; }
#info .char { font: 600 22px ui-monospace, monospace; }
#info table { border-collapse: collapse; width: 100%; margin-top: 4px; }
#info td { padding: 1px 4px; } #info td.c { font-family: ui-monospace, monospace; white-space: pre; width: 3.2em; }
#info td.p { width: 4.2em; text-align: right; } #info .pbar { height: 9px; background: #6a9fd4; }
#info tr.actual td { font-weight: 700; } #info .k { color: var(--muted); }
"""

SCRIPT = r"""
(function () {
  "use strict";
  const data = JSON.parse(document.getElementById("report-data").textContent);
  const chars = Array.from(data.text);
  const L = chars.length;

  function bytes(b64) {
    const raw = atob(b64), out = new Uint8Array(raw.length);
    for (let i = 0; i < raw.length; i++) out[i] = raw.charCodeAt(i);
    return out;
  }
  function u16(b64) { const b = bytes(b64); return new Uint16Array(b.buffer, 0, b.length >> 1); }
  const topIds = data.topk.wide ? u16(data.topk.ids) : bytes(data.topk.ids);
  const topProbs = u16(data.topk.probs);
  const K = data.topk.k;
  const cost = u16(data.cost);   // bits of reading char t (x 1/256); 65535 = not scored (the first character)

  function costAt(t) { return cost[t] === 65535 ? NaN : cost[t] / 256; }
  function mix(a, b, t) { return Math.round(a + (b - a) * t); }
  const WHITE = [247, 247, 247], BLUE = [33, 102, 172], RED = [178, 24, 43];
  function diverging(t) {         // t in [-1, 1] -> blue, white, red
    if (!(t === t)) return "rgb(255,255,255)";
    t = Math.max(-1, Math.min(1, t));
    const end = t < 0 ? BLUE : RED, s = Math.abs(t);
    return "rgb(" + mix(WHITE[0], end[0], s) + "," + mix(WHITE[1], end[1], s) + "," + mix(WHITE[2], end[2], s) + ")";
  }
  const HEAT = [[255, 255, 255], [253, 174, 97], [215, 48, 31], [127, 0, 0]];
  function sequential(t) {        // t in [0, 1] -> white, orange, red, dark red
    if (!(t === t)) return "rgb(255,255,255)";
    t = Math.max(0, Math.min(1, t)) * (HEAT.length - 1);
    const i = Math.min(HEAT.length - 2, Math.floor(t)), f = t - i, a = HEAT[i], b = HEAT[i + 1];
    return "rgb(" + mix(a[0], b[0], f) + "," + mix(a[1], b[1], f) + "," + mix(a[2], b[2], f) + ")";
  }
  function shown(ch) { return ch === "\n" ? "\u21b5" : ch; }
  function named(ch) {
    if (ch === "\n") return "\u21b5 (line break)";
    if (ch === " ") return "\u2423 (space)";
    if (ch === "\t") return "\u21e5 (tab)";
    return ch;
  }

  function drawText(box) {
    const frag = document.createDocumentFragment(), spans = new Array(L);
    for (let t = 0; t < L; t++) {
      const s = document.createElement("span");
      s.textContent = shown(chars[t]);
      s.ti = t;
      if (chars[t] === "\n") s.className = "nl";
      frag.appendChild(s);
      spans[t] = s;
      if (chars[t] === "\n") frag.appendChild(document.createTextNode("\n"));
    }
    box.appendChild(frag);
    return spans;
  }
  const unitBox = document.getElementById("text-unit"), lossBox = document.getElementById("text-loss");
  const unitSpans = drawText(unitBox), lossSpans = drawText(lossBox);

  // --- view 3: surprise ---
  const maxBits = data.cost_scale;
  for (let t = 0; t < L; t++) {
    const c = costAt(t), s = lossSpans[t];
    s.style.backgroundColor = sequential(c / maxBits);
    if (c / maxBits > 0.6) s.style.color = "#fff";
  }

  // --- view 1: a unit ---
  const series = data.series, cache = new Map();
  function values(index) {
    if (!cache.has(index)) {
      const sr = series[index], q = bytes(sr.q), v = new Float32Array(q.length), span = (sr.hi - sr.lo) / 255;
      for (let t = 0; t < q.length; t++) v[t] = sr.lo + q[t] * span;
      cache.set(index, v);
    }
    return cache.get(index);
  }
  let current = -1;
  function colourFor(sr, v) {
    return diverging(2 * (v - sr.d0) / (sr.d1 - sr.d0) - 1);
  }
  const layerSel = document.getElementById("pick-layer"), stateSel = document.getElementById("pick-state"),
        unitSel = document.getElementById("pick-unit");
  const byKey = new Map();
  series.forEach(function (sr, i) { byKey.set(sr.layer + "/" + sr.state + "/" + sr.unit, i); });
  function option(sel, value, text) {
    const o = document.createElement("option");
    o.value = value;
    o.textContent = text;
    sel.appendChild(o);
  }
  for (let k = 0; k < data.num_layers; k++) option(layerSel, k, "layer " + k);
  function fillStates(keep) {
    const layer = +layerSel.value, present = data.state_names.filter(function (s) {
      return series.some(function (sr) { return sr.layer === layer && sr.state === s; });
    });
    stateSel.textContent = "";
    present.forEach(function (s) { option(stateSel, s, s + " \u2014 " + data.state_labels[s]); });
    if (present.indexOf(keep) >= 0) stateSel.value = keep;
  }
  function fillUnits(keep) {
    const layer = +layerSel.value, state = stateSel.value;
    unitSel.textContent = "";
    series.forEach(function (sr, i) {
      if (sr.layer === layer && sr.state === state) option(unitSel, i, "unit " + sr.unit);
    });
    const want = byKey.get(layer + "/" + state + "/" + keep);
    if (want !== undefined) unitSel.value = want;
  }
  function select(index, scroll) {
    if (index === undefined || index < 0 || index >= series.length) return;
    current = index;
    const sr = series[index], v = values(index);
    if (+layerSel.value !== sr.layer) { layerSel.value = sr.layer; fillStates(sr.state); }
    if (stateSel.value !== sr.state) { stateSel.value = sr.state; }
    fillUnits(sr.unit);
    unitSel.value = index;
    for (let t = 0; t < L; t++) {
      const s = unitSpans[t], frac = 2 * (v[t] - sr.d0) / (sr.d1 - sr.d0) - 1;
      s.style.backgroundColor = colourFor(sr, v[t]);
      s.style.color = Math.abs(frac) > 0.7 ? "#fff" : "";
    }
    document.getElementById("legend-lo").textContent = fmt(sr.d0);
    document.getElementById("legend-hi").textContent = fmt(sr.d1);
    document.getElementById("unit-title").textContent = "layer " + sr.layer + ", " + sr.state + " (" +
      data.state_labels[sr.state] + "), unit " + sr.unit + (sr.note ? " \u2014 " + sr.note : "");
    document.querySelectorAll("table.rank tbody tr").forEach(function (row) {
      row.classList.toggle("on", +row.dataset.series === index);
    });
    if (scroll) document.getElementById("units").scrollIntoView({ behavior: "auto", block: "start" });
    showInfo(pinned);
  }
  function fmt(x) { return Math.abs(x) >= 100 ? x.toFixed(0) : x.toFixed(Math.abs(x) >= 10 ? 1 : 2); }
  layerSel.addEventListener("change", function () {
    const old = current >= 0 ? series[current] : null;
    fillStates(old ? old.state : "h");
    fillUnits(old ? old.unit : 0);
    select(+unitSel.value);
  });
  stateSel.addEventListener("change", function () {
    fillUnits(current >= 0 ? series[current].unit : 0);
    select(+unitSel.value);
  });
  unitSel.addEventListener("change", function () { select(+unitSel.value); });
  document.querySelectorAll("table.rank tbody tr").forEach(function (row) {
    row.addEventListener("click", function () { select(+row.dataset.series, true); });
  });

  // --- view 2: what the model expected next ---
  const info = document.getElementById("info");
  let pinned = 0;
  function showInfo(t) {
    if (t < 0 || t >= L) return;
    const parts = [];
    parts.push('<div class="k">position ' + t + '</div><div class="char">' + esc(named(chars[t])) + "</div>");
    if (current >= 0) parts.push('<div><span class="k">unit value</span> ' + values(current)[t].toFixed(3) + "</div>");
    const c = costAt(t);
    parts.push('<div><span class="k">loss of this character</span> ' +
      (c === c ? c.toFixed(2) + " bits" : "\u2014 (first)") + "</div>");
    parts.push('<div class="k" style="margin-top:6px">top ' + K + " guesses for the next character" +
      (t + 1 < L ? " (actual: <b>" + esc(named(chars[t + 1])) + "</b>)" : "") + "</div><table>");
    for (let j = 0; j < K; j++) {
      const id = topIds[t * K + j], p = topProbs[t * K + j] / 65535, ch = data.vocab[id];
      const actual = t + 1 < L && ch === chars[t + 1];
      parts.push("<tr" + (actual ? ' class="actual"' : "") + '><td class="c">' +
        esc(shown(ch === " " ? "\u2423" : ch)) +
        '</td><td><div class="pbar" style="width:' + Math.max(1, Math.round(p * 100)) + '%"></div></td><td class="p">' +
        (p * 100).toFixed(1) + "%</td></tr>");
    }
    parts.push("</table>");
    info.innerHTML = parts.join("");
  }
  function esc(s) { return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;"); }
  let marked = [];
  function mark(t) {
    marked.forEach(function (s) { s.classList.remove("cur"); });
    marked = [unitSpans[t], lossSpans[t]];
    marked.forEach(function (s) { s.classList.add("cur"); });
  }
  [unitBox, lossBox].forEach(function (box) {
    box.addEventListener("mouseover", function (e) { if (e.target.ti !== undefined) showInfo(e.target.ti); });
    box.addEventListener("mouseleave", function () { showInfo(pinned); });
    box.addEventListener("click", function (e) {
      if (e.target.ti !== undefined) { pinned = e.target.ti; mark(pinned); showInfo(pinned); box.focus(); }
    });
    box.addEventListener("keydown", function (e) {
      const step = { ArrowRight: 1, ArrowLeft: -1, ArrowDown: 40, ArrowUp: -40 }[e.key];
      if (step === undefined && e.key !== "Home" && e.key !== "End") return;
      e.preventDefault();
      pinned = e.key === "Home" ? 0 : e.key === "End" ? L - 1 : Math.max(0, Math.min(L - 1, pinned + step));
      mark(pinned); showInfo(pinned);
      const s = (box === unitBox ? unitSpans : lossSpans)[pinned];
      if (s.scrollIntoView) s.scrollIntoView({ block: "nearest" });
    });
    box.addEventListener("focus", function () { mark(pinned); showInfo(pinned); });
  });

  fillStates(series.length ? series[data.selected].state : "h");
  select(data.selected);
  mark(0);
  showInfo(0);
  document.body.dataset.ready = "1";
})();
"""
