// auspex anomaly explorer: a plain client of the REST API (the same calls any client makes).
// No framework and no build step; times are shown in UTC.
"use strict";

const API = "/_ml/anomaly_detectors";
const SVG_NS = "http://www.w3.org/2000/svg";
const PAGE = 10000; // the API's largest page (from + size)
const MARGIN = { left: 170, right: 14, top: 10, bottom: 26 };
const EVENTS = "__events";
const RECORDS = "records:";

const state = {
  jobs: [], job: null, buckets: [], records: [], plot: [], forecast: [], span: 0,
  extent: null, view: null, minScore: 0, series: EVENTS,
};

const $ = (selector) => document.querySelector(selector);

function severity(score) {
  if (score >= 75) return "critical";
  if (score >= 50) return "major";
  if (score >= 25) return "minor";
  return "warning";
}

function setStatus(text) { $("#status").textContent = text || ""; }

function fmtTime(ms) { return new Date(ms).toISOString().replace("T", " ").slice(0, 16); }

function fmtNum(n) {
  if (n === undefined || n === null) return "";
  if (Math.abs(n) >= 1000 || Number.isInteger(n)) return Math.round(n).toLocaleString("en");
  return Number(n.toPrecision(4)).toString();
}

function el(tag, attrs, text) {
  const node = tag.startsWith("svg:") ? document.createElementNS(SVG_NS, tag.slice(4)) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

async function getJSON(path) {
  // Against the origin, never the page's own address: an address with user:password@ (a secured
  // server opened that way) cannot be fetched from, while the browser's credentials still apply.
  const url = new URL(path, location.origin);
  const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
  if (!response.ok) {
    let reason = String(response.status);
    try {
      const body = await response.json();
      reason = (body.error && (body.error.reason || body.error)) || reason;
    } catch (e) { /* not JSON */ }
    throw new Error(`${path}: ${reason}`);
  }
  return response.json();
}

// Pages through a results endpoint in time order: each page starts after the last one's end.
async function allResults(jobId, kind, key) {
  const out = [];
  let start = null;
  for (let page = 0; page < 1000; page++) {
    const query = new URLSearchParams({ size: String(PAGE), sort: "timestamp", desc: "false" });
    if (start !== null) query.set("start", String(start));
    const body = await getJSON(`${API}/${encodeURIComponent(jobId)}/results/${kind}?${query}`);
    const docs = body[key] || [];
    out.push(...docs);
    if (docs.length < PAGE) break;
    start = docs[docs.length - 1].timestamp + 1;
  }
  return out;
}

// Model plot documents, when this server has them; otherwise the chart shows event counts.
async function modelPlot(jobId) {
  try {
    return await allResults(jobId, "model_plot", "model_plot");
  } catch (e) {
    return [];
  }
}

// The rows of the job's newest forecast (auspex's results/forecasts extension), if any.
async function latestForecast(jobId) {
  try {
    const base = `${API}/${encodeURIComponent(jobId)}/results/forecasts`;
    const list = await getJSON(`${base}?sort=forecast_create_timestamp&desc=true&size=1`);
    const newest = (list.forecasts || [])[0];
    if (!newest) return [];
    const body = await getJSON(`${base}/${encodeURIComponent(newest.forecast_id)}?size=${PAGE}`);
    return body.model_forecast || [];
  } catch (e) {
    return [];
  }
}

async function loadJobs() {
  const [stats, configs] = await Promise.all([getJSON(`${API}/_stats`), getJSON(API)]);
  const descriptions = new Map((configs.jobs || []).map((j) => [j.job_id, j]));
  state.jobs = (stats.jobs || []).map((s) => ({ stats: s, config: descriptions.get(s.job_id) || {} }));
  const body = $("#jobs tbody");
  body.replaceChildren();
  if (state.jobs.length === 0) {
    const row = el("tr");
    row.append(el("td", { colspan: "4", class: "empty" }, "no jobs yet"));
    body.append(row);
  }
  for (const { stats: s } of state.jobs) {
    const row = el("tr", { "data-job": s.job_id });
    row.append(el("td", {}, s.job_id));
    const stateCell = el("td");
    stateCell.append(el("span", { class: `state state-${s.state}` }, s.state));
    row.append(stateCell);
    row.append(el("td", { class: "num" }, fmtNum(s.data_counts.processed_record_count)));
    row.append(el("td", { class: "num" }, fmtNum((s.timing_stats || {}).bucket_count || 0)));
    row.addEventListener("click", () => { location.hash = `job=${encodeURIComponent(s.job_id)}`; });
    body.append(row);
  }
}

async function selectJob(jobId, view) {
  const entry = state.jobs.find((j) => j.stats.job_id === jobId);
  if (!entry) { setStatus(`no job [${jobId}]`); return; }
  for (const row of document.querySelectorAll("#jobs tbody tr")) {
    row.classList.toggle("selected", row.dataset.job === jobId);
  }
  document.body.dataset.state = "loading";
  setStatus(`loading ${jobId}...`);
  const [buckets, records, plot, forecast] = await Promise.all([
    allResults(jobId, "buckets", "buckets"),
    allResults(jobId, "records", "records"),
    modelPlot(jobId),
    latestForecast(jobId),
  ]);
  state.job = entry;
  state.buckets = buckets;
  state.records = records;
  state.plot = plot;
  state.forecast = forecast;
  const spanText = (entry.config.analysis_config || {}).bucket_span || "";
  state.span = (buckets[0] ? buckets[0].bucket_span * 1000 : 0) || parseSpan(spanText);
  // The time axis covers the buckets and the forecast after them.
  const times = buckets.map((b) => b.timestamp).concat(forecast.map((f) => f.timestamp));
  state.extent = times.length ? [Math.min(...times), Math.max(...times) + state.span] : null;
  state.view = view || state.extent;
  $("#job").hidden = false;
  $("#job-title").textContent = jobId;
  $("#job-description").textContent =
    `${entry.config.description || ""} bucket span ${spanText}, ${buckets.length} buckets, ${records.length} anomaly records`;
  fillSeries();
  const wanted = hashParam("series");
  if (wanted && [...$("#series").options].some((o) => o.value === wanted)) {
    state.series = wanted;
    $("#series").value = wanted;
  }
  setStatus(plot.length ? "" : "no model plot on this server: the chart shows events per bucket, or a series' actual against typical values where it was anomalous");
  render();
  document.body.dataset.job = jobId;
  document.body.dataset.state = "ready";
}

function parseSpan(text) {
  const m = /^(\d+)(ms|s|m|h|d)$/.exec(text || "");
  if (!m) return 0;
  return Number(m[1]) * { ms: 1, s: 1e3, m: 6e4, h: 3.6e6, d: 8.64e7 }[m[2]];
}

function seriesKey(doc) {
  return [doc.detector_index, doc.partition_field_value, doc.by_field_value, doc.over_field_value]
    .map((v) => (v === undefined ? "" : v)).join("|");
}

function seriesLabel(doc) {
  const names = [doc.partition_field_value, doc.by_field_value, doc.over_field_value].filter((v) => v !== undefined);
  const detector = `${doc.function || "detector"}${doc.field_name ? `(${doc.field_name})` : ""}`;
  return names.length ? `${detector} ${names.join(" / ")}` : detector;
}

function fillSeries() {
  const select = $("#series");
  select.replaceChildren(el("option", { value: EVENTS }, "events per bucket"));
  const seen = new Map();
  for (const doc of state.plot) if (!seen.has(seriesKey(doc))) seen.set(seriesKey(doc), seriesLabel(doc));
  for (const [key, label] of seen) select.append(el("option", { value: key }, `model plot: ${label}`));
  // Without a model plot, a series' actual values are known where it was anomalous: each record
  // shows its actual value against the typical one.
  const anomalous = new Map();
  for (const r of state.records) if (!anomalous.has(seriesKey(r))) anomalous.set(seriesKey(r), seriesLabel(r));
  for (const [key, label] of anomalous) select.append(el("option", { value: RECORDS + key }, `anomalies: ${label}`));
  state.series = seen.size ? seen.keys().next().value : EVENTS;
  select.value = state.series;
}

// Points of the selected series' line: {t, y, lo, hi, md} (none for a series known from records only).
function seriesPoints() {
  if (state.series === EVENTS) return state.buckets.map((b) => ({ t: b.timestamp, y: b.event_count }));
  if (state.series.startsWith(RECORDS)) return [];
  return state.plot.filter((d) => seriesKey(d) === state.series)
    .map((d) => ({ t: d.timestamp, y: d.actual, lo: d.model_lower, hi: d.model_upper, md: d.model_median }));
}

// The selected series' forecast: {t, lo, hi, md}.
function forecastPoints() {
  if (state.series === EVENTS || state.series.startsWith(RECORDS)) return [];
  return state.forecast.filter((d) => seriesKey(d) === state.series)
    .map((d) => ({ t: d.timestamp, lo: d.forecast_lower, hi: d.forecast_upper, md: d.forecast_prediction }));
}

// A closed band between the `lo` and `hi` of points (all of which have both).
function bandPath(points, x, y) {
  const upper = points.map((p) => `${x(p.t).toFixed(1)},${y(p.hi).toFixed(1)}`);
  const lower = points.slice().reverse().map((p) => `${x(p.t).toFixed(1)},${y(p.lo).toFixed(1)}`);
  return `M${upper.join("L")}L${lower.join("L")}Z`;
}

function linePath(points, x, y, key) {
  return points.map((p, i) => `${i ? "L" : "M"}${x(p.t).toFixed(1)},${y(p[key]).toFixed(1)}`).join("");
}

function inView(t) { return state.view && t >= state.view[0] && t < state.view[1]; }

function visibleRecords() {
  return state.records.filter((r) => inView(r.timestamp) && r.record_score >= state.minScore);
}

function render() {
  syncRangeInputs();
  renderChart();
  renderSwimlane();
  renderTable();
}

function scales(svg, height) {
  const width = svg.clientWidth || 1000;
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("height", String(height));
  const [t0, t1] = state.view;
  const plotWidth = width - MARGIN.left - MARGIN.right;
  const x = (t) => MARGIN.left + ((t - t0) / Math.max(1, t1 - t0)) * plotWidth;
  const time = (px) => t0 + ((px - MARGIN.left) / plotWidth) * (t1 - t0);
  return { width, plotWidth, x, time };
}

function renderChart() {
  const svg = $("#chart");
  svg.replaceChildren();
  if (!state.view) { svg.append(el("svg:text", { x: "20", y: "30", class: "lane-label" }, "no results yet")); return; }
  const height = 300;
  const { width, x, time } = scales(svg, height);
  const points = seriesPoints().filter((p) => inView(p.t));
  const forecast = forecastPoints().filter((p) => inView(p.t));
  const byTime = new Map(points.map((p) => [p.t, p.y]));
  const fromRecords = state.series.startsWith(RECORDS);
  const key = fromRecords ? state.series.slice(RECORDS.length) : state.series;
  const anomalies = visibleRecords().filter((r) => state.series === EVENTS || seriesKey(r) === key);
  const markerY = (r) => (state.series === EVENTS ? byTime.get(r.timestamp) : (r.actual || [])[0]);
  const typical = (r) => (fromRecords ? (r.typical || [])[0] : undefined);
  const values = points.concat(forecast).flatMap((p) => [p.y, p.lo, p.hi]).concat(anomalies.map(markerY), anomalies.map(typical))
    .filter((v) => typeof v === "number" && isFinite(v));
  const step = niceStep(Math.max(1, ...values) - Math.min(0, ...values), 4);
  const lo = Math.floor(Math.min(0, ...values) / step) * step;
  const hi = Math.ceil((Math.max(1, ...values) * 1.04) / step) * step;
  const y = (v) => MARGIN.top + (1 - (v - lo) / (hi - lo)) * (height - MARGIN.top - MARGIN.bottom);
  axes(svg, x, y, lo, hi, step, width, height);
  // The model's 95% bounds and median (model plot; none while a series' model warms up), then the
  // forecast's band and prediction, then the actual values on top.
  const withBounds = points.filter((p) => typeof p.lo === "number" && typeof p.hi === "number");
  if (withBounds.length) {
    svg.append(el("svg:path", { class: "bounds", d: bandPath(withBounds, x, y), "data-points": String(withBounds.length) }));
    svg.append(el("svg:path", { class: "median", d: linePath(withBounds, x, y, "md"), "data-points": String(withBounds.length) }));
  }
  if (forecast.length) {
    svg.append(el("svg:path", { class: "forecast-bounds", d: bandPath(forecast, x, y), "data-points": String(forecast.length) }));
    svg.append(el("svg:path", { class: "forecast", d: linePath(forecast, x, y, "md"), "data-points": String(forecast.length) }));
  }
  // A population attribute's bounds-only documents (no member used it that bucket) have no actual.
  const withActual = points.filter((p) => typeof p.y === "number");
  if (withActual.length) {
    svg.append(el("svg:path", { class: "series", d: linePath(withActual, x, y, "y"), "data-points": String(withActual.length) }));
  }
  let drawn = 0;
  for (const r of anomalies.slice().sort((a, b) => a.record_score - b.record_score)) {
    const v = markerY(r);
    if (typeof v !== "number") continue;
    const t = typical(r);
    if (typeof t === "number") {
      const cx = x(r.timestamp).toFixed(1);
      svg.append(el("svg:line", { class: "stem", x1: cx, x2: cx, y1: y(t).toFixed(1), y2: y(v).toFixed(1) }));
      svg.append(el("svg:line", { class: "typical", x1: (x(r.timestamp) - 4).toFixed(1), x2: (x(r.timestamp) + 4).toFixed(1), y1: y(t).toFixed(1), y2: y(t).toFixed(1) }));
    }
    const circle = el("svg:circle", {
      class: `anomaly sev-${severity(r.record_score)}`, cx: x(r.timestamp).toFixed(1), cy: y(v).toFixed(1),
      r: (2 + r.record_score / 20).toFixed(1), "data-score": r.record_score.toFixed(1),
    });
    circle.append(el("svg:title", {}, `${fmtTime(r.timestamp)} ${seriesLabel(r)}: score ${r.record_score.toFixed(1)}, actual ${fmtNum((r.actual || [])[0])}, typical ${fmtNum((r.typical || [])[0])}`));
    svg.append(circle);
    drawn += 1;
  }
  document.body.dataset.anomalies = String(drawn);
  brush(svg, time, height);
}

// A round tick step (1, 2 or 5 times a power of ten) giving about `count` ticks over `range`.
function niceStep(range, count) {
  const raw = Math.max(range, 1e-9) / count;
  const magnitude = Math.pow(10, Math.floor(Math.log10(raw)));
  const n = raw / magnitude;
  return (n <= 1 ? 1 : n <= 2 ? 2 : n <= 5 ? 5 : 10) * magnitude;
}

function axes(svg, x, y, lo, hi, step, width, height) {
  const g = el("svg:g", { class: "axis" });
  const [t0, t1] = state.view;
  const ticks = 6;
  for (let i = 0; i <= ticks; i++) {
    const t = t0 + ((t1 - t0) * i) / ticks;
    const px = x(t);
    g.append(el("svg:line", { x1: px, x2: px, y1: MARGIN.top, y2: height - MARGIN.bottom }));
    g.append(el("svg:text", { x: px, y: height - 8, "text-anchor": "middle" }, fmtTime(t).slice(5)));
  }
  for (let v = lo; v <= hi + step / 2; v += step) {
    const py = y(v);
    g.append(el("svg:line", { x1: MARGIN.left, x2: width - MARGIN.right, y1: py, y2: py }));
    g.append(el("svg:text", { x: MARGIN.left - 6, y: py + 3, "text-anchor": "end" }, fmtNum(v)));
  }
  svg.append(g);
}

// Drag to zoom into a time range; double-click to zoom out to everything.
function brush(svg, time, height) {
  let startX = null;
  const rect = el("svg:rect", { class: "brush", y: "0", height: String(height), width: "0" });
  svg.append(rect);
  const px = (event) => {
    const box = svg.getBoundingClientRect();
    return ((event.clientX - box.left) / box.width) * svg.viewBox.baseVal.width;
  };
  svg.onmousedown = (event) => { startX = px(event); rect.setAttribute("x", startX); rect.setAttribute("width", "0"); };
  svg.onmousemove = (event) => {
    if (startX === null) return;
    const now = px(event);
    rect.setAttribute("x", Math.min(startX, now));
    rect.setAttribute("width", Math.abs(now - startX));
  };
  svg.onmouseup = (event) => {
    if (startX === null) return;
    const a = time(Math.min(startX, px(event)));
    const b = time(Math.max(startX, px(event)));
    startX = null;
    if (b - a > state.span) setView([a, b]); else rect.setAttribute("width", "0");
  };
  svg.ondblclick = () => setView(state.extent);
}

function renderSwimlane() {
  const svg = $("#swimlane");
  svg.replaceChildren();
  if (!state.view) return;
  // Rows: the bucket score, then the most anomalous series.
  const bySeries = new Map();
  for (const r of state.records) {
    if (!inView(r.timestamp)) continue;
    const row = bySeries.get(seriesKey(r)) || { label: seriesLabel(r), max: 0, points: [] };
    row.max = Math.max(row.max, r.record_score);
    row.points.push({ t: r.timestamp, score: r.record_score });
    bySeries.set(seriesKey(r), row);
  }
  const rows = [{ label: "overall (bucket)", points: state.buckets.filter((b) => inView(b.timestamp)).map((b) => ({ t: b.timestamp, score: b.anomaly_score })) }]
    .concat([...bySeries.values()].sort((a, b) => b.max - a.max).slice(0, 8));
  const laneHeight = 18;
  const height = rows.length * laneHeight + 4;
  const { plotWidth, x, time } = scales(svg, height);
  const columns = Math.max(1, Math.min(Math.round(plotWidth / 4), Math.round((state.view[1] - state.view[0]) / Math.max(1, state.span))));
  const columnWidth = plotWidth / columns;
  rows.forEach((row, i) => {
    const top = 2 + i * laneHeight;
    svg.append(el("svg:text", { x: MARGIN.left - 6, y: top + 12, "text-anchor": "end", class: "lane-label" }, row.label.slice(0, 28)));
    const cells = new Array(columns).fill(null);
    for (const p of row.points) {
      const c = Math.min(columns - 1, Math.floor(((p.t - state.view[0]) / (state.view[1] - state.view[0])) * columns));
      if (c >= 0) cells[c] = Math.max(cells[c] === null ? 0 : cells[c], p.score);
    }
    cells.forEach((score, c) => {
      const cls = score === null || score <= 0 ? "sev-none" : `sev-${severity(score)}`;
      const cell = el("svg:rect", { class: `cell ${cls}`, x: (MARGIN.left + c * columnWidth).toFixed(1), y: top, width: Math.max(1, columnWidth - 0.5).toFixed(1), height: laneHeight - 3 });
      if (score !== null) cell.append(el("svg:title", {}, `${row.label}: ${score.toFixed(1)}`));
      svg.append(cell);
    });
  });
  void x;
  brush(svg, time, height);
}

function renderTable() {
  const records = visibleRecords().sort((a, b) => b.record_score - a.record_score);
  const body = $("#records tbody");
  body.replaceChildren();
  $("#record-count").textContent = `(${records.length} with score >= ${state.minScore} in view${records.length > 500 ? ", top 500 shown" : ""})`;
  for (const r of records.slice(0, 500)) {
    const row = el("tr", { class: "record" });
    row.append(el("td", {}, fmtTime(r.timestamp)));
    const sev = el("td");
    sev.append(el("span", { class: `badge sev-${severity(r.record_score)}` }, severity(r.record_score)));
    row.append(sev);
    row.append(el("td", { class: "num" }, r.record_score.toFixed(1)));
    row.append(el("td", {}, `${r.function}${r.field_name ? `(${r.field_name})` : ""}`));
    row.append(el("td", {}, [r.partition_field_value, r.by_field_value, r.over_field_value].filter((v) => v !== undefined).join(" / ")));
    row.append(el("td", { class: "num" }, fmtNum((r.actual || [])[0])));
    row.append(el("td", { class: "num" }, fmtNum((r.typical || [])[0])));
    row.append(el("td", { class: "num" }, r.probability.toExponential(2)));
    row.addEventListener("click", () => setView([r.timestamp - 24 * state.span, r.timestamp + 25 * state.span]));
    body.append(row);
  }
}

function toInput(ms) { return new Date(ms).toISOString().slice(0, 16); }
function fromInput(text) { const t = Date.parse(`${text}:00Z`); return isNaN(t) ? null : t; }

function syncRangeInputs() {
  if (!state.view) return;
  $("#from").value = toInput(state.view[0]);
  $("#to").value = toInput(state.view[1]);
}

function wireControls() {
  $("#min-score").addEventListener("input", (event) => {
    state.minScore = Number(event.target.value);
    $("#min-score-value").textContent = String(state.minScore);
    if (state.view) { renderChart(); renderTable(); }
  });
  $("#series").addEventListener("change", (event) => { state.series = event.target.value; renderChart(); });
  const range = () => {
    const a = fromInput($("#from").value);
    const b = fromInput($("#to").value);
    if (a !== null && b !== null && b > a) setView([a, b]);
  };
  $("#from").addEventListener("change", range);
  $("#to").addEventListener("change", range);
  $("#reset").addEventListener("click", () => setView(state.extent));
  window.addEventListener("hashchange", route);
  window.addEventListener("resize", () => { if (state.view) render(); });
}

// Zooms to `view` and records it in the address (`#job=..&from=..&to=..`, epoch ms), so a view
// can be bookmarked or shared; replaceState does not fire hashchange, so nothing reloads.
function setView(view) {
  if (!view) return;
  state.view = view;
  render();
  const job = state.job ? state.job.stats.job_id : "";
  const series = state.series === EVENTS ? "" : `&series=${encodeURIComponent(state.series)}`;
  history.replaceState(null, "", `#job=${encodeURIComponent(job)}&from=${Math.round(view[0])}&to=${Math.round(view[1])}${series}`);
}

function hashParam(name) {
  const match = new RegExp(`[#&]${name}=([^&]+)`).exec(location.hash);
  return match ? decodeURIComponent(match[1]) : null;
}

// A time from the address: epoch ms, or an ISO date (UTC unless it says otherwise).
function hashTime(name) {
  const text = hashParam(name);
  if (text === null) return null;
  if (/^-?\d+$/.test(text)) return Number(text);
  const t = Date.parse(/[zZ]|[+-]\d\d:?\d\d$/.test(text) ? text : `${text}Z`);
  return isNaN(t) ? null : t;
}

async function route() {
  const job = hashParam("job");
  const from = hashTime("from");
  const to = hashTime("to");
  try {
    if (job) await selectJob(job, from !== null && to !== null && to > from ? [from, to] : null);
    else document.body.dataset.state = "ready";
  } catch (error) {
    setStatus(String(error.message || error));
    document.body.dataset.state = "error";
  }
}

async function main() {
  wireControls();
  try {
    await loadJobs();
  } catch (error) {
    setStatus(String(error.message || error));
    document.body.dataset.state = "error";
    return;
  }
  await route();
}

main();
