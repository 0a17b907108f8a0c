// Spool console: plain JavaScript, no libraries, no build step. Reads the admin JSON API
// (/v1/...) every POLL_MS, keeps a short history in memory for the live charts, and
// renders one of the views chosen by the URL hash: overview, topics, topic, groups, group,
// broker, cluster.
"use strict";

const POLL_MS = 2000;          // how often the API is read
const HISTORY_POINTS = 150;    // samples kept for the charts (5 minutes at 2 s)
const RECORD_LIMIT = 50;       // records the browser asks for
const MIN_WINDOW_MS = 20000;   // the charts' time axis spans at least this much

const state = {
  broker: null, topics: [], groups: [], cluster: null,
  history: [],                 // [{t, recordsIn, recordsOut, topicIn: {name: n}, lag: {group: n}}]
  rates: { in: [], out: [], topic: {}, lag: {} },
  route: null, browser: null, error: null, session: null,
};

// ---------- helpers ----------

const $ = (sel, root = document) => root.querySelector(sel);
function esc(s) {
  return String(s).replace(/[&<>"']/g, c => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
}
function num(n) { return n == null ? "–" : Number(n).toLocaleString("en-US"); }
function bytes(n) {
  if (n == null) return "–";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0, v = n;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return (i === 0 ? v : v.toFixed(1)) + " " + units[i];
}
function duration(seconds) {
  const s = Math.floor(seconds), d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60);
  if (d) return d + "d " + h + "h";
  if (h) return h + "h " + m + "m";
  if (m) return m + "m " + (s % 60) + "s";
  return s + "s";
}
function millis(ms) {
  const n = Number(ms);
  if (n < 0) return "off";
  if (n % 86400000 === 0) return n / 86400000 + " d";
  if (n % 3600000 === 0) return n / 3600000 + " h";
  if (n % 60000 === 0) return n / 60000 + " min";
  return num(n) + " ms";
}
function rate(v) { return v == null ? "–" : (v >= 100 ? Math.round(v).toLocaleString("en-US") : v.toFixed(1)); }
function time(ms) { return new Date(ms).toISOString().replace("T", " ").replace("Z", ""); }
function bytesView(b) {
  if (!b) return '<span class="muted">null</span>';
  const text = b.encoding === "hex" ? '<span class="muted">hex </span>' + esc(b.data) : esc(b.data);
  return text + (b.truncated ? ' <span class="muted">… (' + num(b.length) + " bytes)</span>" : "");
}
// Absolute URLs: a page opened as http://user:password@host/ has that base, and fetch()
// refuses relative URLs that would carry credentials; location.origin never has them. The
// browser sends the login it gave for the page (HTTP basic) with each same-origin call.
async function getJSON(path) {
  const response = await fetch(location.origin + path, { cache: "no-store", credentials: "same-origin" });
  if (response.status === 401) throw new Error("not logged in: reload the page to log in");
  const body = await response.json();
  if (!response.ok) throw new Error((body && body.message) || response.statusText);
  return body;
}
function last(a) { return a.length ? a[a.length - 1] : null; }

// ---------- polling and history ----------

async function poll() {
  try {
    if (!state.session) {
      state.session = await getJSON("/v1/session");
      const who = $("#who");
      if (who && state.session.loginRequired) who.textContent = state.session.principal;
    }
    const [broker, topics, groups, cluster] = await Promise.all([
      getJSON("/v1/broker"), getJSON("/v1/topics"), getJSON("/v1/groups"), getJSON("/v1/cluster")]);
    state.broker = broker; state.topics = topics; state.groups = groups; state.cluster = cluster; state.error = null;
    record(Date.now());
    setStatus(broker.ready ? "ok" : "bad", broker.ready ? "broker " + broker.version + " · ready" : "broker not ready");
  } catch (e) {
    state.error = e.message;
    setStatus("bad", "cannot reach the broker: " + e.message);
  }
  update();
}

function record(t) {
  const sample = { t, recordsIn: state.broker.recordsIn, recordsOut: state.broker.recordsOut, topicIn: {}, lag: {} };
  for (const topic of state.topics) sample.topicIn[topic.name] = topic.recordsIn;
  for (const group of state.groups) sample.lag[group.group] = group.totalLag;
  const prev = last(state.history);
  state.history.push(sample);
  if (state.history.length > HISTORY_POINTS) state.history.shift();
  for (const g of state.groups) push(state.rates.lag, g.group, { t, v: g.totalLag });
  if (!prev) return;
  const dt = (t - prev.t) / 1000;
  if (dt <= 0) return;
  pushPoint(state.rates.in, { t, v: Math.max(0, (sample.recordsIn - prev.recordsIn) / dt) });
  pushPoint(state.rates.out, { t, v: Math.max(0, (sample.recordsOut - prev.recordsOut) / dt) });
  for (const name in sample.topicIn) {
    if (prev.topicIn[name] != null) push(state.rates.topic, name, { t, v: Math.max(0, (sample.topicIn[name] - prev.topicIn[name]) / dt) });
  }
}
function pushPoint(list, p) { list.push(p); if (list.length > HISTORY_POINTS) list.shift(); }
function push(map, key, p) { (map[key] = map[key] || []); pushPoint(map[key], p); }

function setStatus(kind, text) {
  const el = $("#status");
  el.className = "status " + kind;
  el.textContent = text;
}

// ---------- charts (canvas) ----------

function drawChart(canvas, series, unit) {
  if (!canvas) return;
  const ratio = window.devicePixelRatio || 1;
  const w = canvas.clientWidth || 600, h = canvas.clientHeight || 180;
  canvas.width = w * ratio; canvas.height = h * ratio;
  const ctx = canvas.getContext("2d");
  ctx.scale(ratio, ratio);
  ctx.clearRect(0, 0, w, h);
  const left = 56, right = 8, top = 8, bottom = 20;
  const points = series.flatMap(s => s.points);
  const now = Date.now();
  const first = Math.min(now, ...points.map(p => p.t));
  const windowMs = Math.min(HISTORY_POINTS * POLL_MS, Math.max(MIN_WINDOW_MS, now - first));
  const t0 = now - windowMs;
  let max = Math.max(4, ...points.map(p => p.v));
  const mag = Math.pow(10, Math.floor(Math.log10(max)));
  max = Math.ceil(max / mag) * mag;
  ctx.font = "11px system-ui, sans-serif";
  ctx.fillStyle = "#6b7385"; ctx.strokeStyle = "#e2e5eb"; ctx.lineWidth = 1;
  for (let i = 0; i <= 4; i++) {
    const y = top + (h - top - bottom) * i / 4;
    ctx.beginPath(); ctx.moveTo(left, y); ctx.lineTo(w - right, y); ctx.stroke();
    const v = max * (1 - i / 4);
    ctx.fillText((v >= 1000 ? Math.round(v).toLocaleString("en-US") : +v.toFixed(1)) + (i === 0 ? " " + unit : ""), 4, y + 4);
  }
  ctx.fillText("−" + (windowMs >= 120000 ? Math.round(windowMs / 60000) + " min" : Math.round(windowMs / 1000) + " s"), left, h - 4);
  ctx.fillText("now", w - right - 22, h - 4);
  const x = t => left + (w - left - right) * Math.max(0, (t - t0)) / (now - t0);
  const y = v => top + (h - top - bottom) * (1 - v / max);
  for (const s of series) {
    if (!s.points.length) continue;
    ctx.strokeStyle = s.color; ctx.lineWidth = 2; ctx.beginPath();
    s.points.forEach((p, i) => i ? ctx.lineTo(x(p.t), y(p.v)) : ctx.moveTo(x(p.t), y(p.v)));
    if (s.points.length === 1) { const p = s.points[0]; ctx.arc(x(p.t), y(p.v), 2, 0, 2 * Math.PI); }
    ctx.stroke();
  }
}
const PALETTE = ["#c53030", "#805ad5", "#2f855a", "#d69e2e", "#3182ce", "#dd6b20", "#319795"];
function legend(series) {
  return '<div class="legend">' + series.map(s => '<span><i style="background:' + s.color + '"></i>' + esc(s.label) + "</span>").join("") + "</div>";
}

// ---------- views ----------

function route() {
  const parts = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  if (parts[0] === "topics" && parts[1]) return { view: "topic", name: parts[1] };
  if (parts[0] === "groups" && parts[1]) return { view: "group", name: parts[1] };
  if (parts[0] === "topics") return { view: "topics" };
  if (parts[0] === "groups") return { view: "groups" };
  if (parts[0] === "broker") return { view: "broker" };
  if (parts[0] === "cluster") return { view: "cluster" };
  return { view: "overview" };
}

function mount() {
  state.route = route();
  const nav = { overview: "overview", topics: "topics", topic: "topics", groups: "groups", group: "groups", broker: "broker", cluster: "cluster" }[state.route.view];
  document.querySelectorAll("header nav a").forEach(a => a.classList.toggle("active", a.dataset.nav === nav));
  const app = $("#app");
  switch (state.route.view) {
    case "overview":
      app.innerHTML = '<h1>Overview</h1><div id="cards" class="cards"></div>' +
        '<div class="grid"><div class="panel"><h2>Records per second</h2><canvas id="chart-rates" class="chart"></canvas>' +
        legend([{ color: "#2b6cb0", label: "in (appended)" }, { color: "#d9822b", label: "out (sent to consumers)" }]) + "</div>" +
        '<div class="panel"><h2>Consumer lag (records)</h2><canvas id="chart-lag" class="chart"></canvas><div id="lag-legend"></div></div></div>' +
        '<div class="panel"><h2>Topics</h2><div id="topics-table"></div></div>' +
        '<div class="panel"><h2>Consumer groups</h2><div id="groups-table"></div></div>';
      break;
    case "topics":
      app.innerHTML = '<h1>Topics</h1><div class="panel"><div id="topics-table"></div></div>';
      break;
    case "groups":
      app.innerHTML = '<h1>Consumer groups</h1><div class="panel"><div id="groups-table"></div></div>' +
        '<div class="panel"><h2>Consumer lag (records)</h2><canvas id="chart-lag" class="chart"></canvas><div id="lag-legend"></div></div>';
      break;
    case "topic":
      app.innerHTML = '<h1>Topic <span id="topic-name">' + esc(state.route.name) + '</span></h1><div id="cards" class="cards"></div>' +
        '<div class="panel"><h2>Partitions</h2><div id="partitions-table"></div></div>' +
        '<div class="panel"><h2>Records per second in</h2><canvas id="chart-topic" class="chart"></canvas></div>' +
        '<div class="panel"><h2>Record browser</h2><form class="browse" id="browse">' +
        '<label>Partition <select name="partition" id="browse-partition"></select></label>' +
        '<label><input type="radio" name="mode" value="latest" checked> latest ' + RECORD_LIMIT + "</label>" +
        '<label><input type="radio" name="mode" value="from"> from offset <input name="from" type="number" min="0" style="width:120px"></label>' +
        '<button type="submit">Show</button><span id="browse-info" class="muted"></span></form><div id="records"></div></div>' +
        '<div class="panel"><h2>Configuration</h2><div id="configs"></div></div>';
      state.browser = { topic: state.route.name, partition: 0, from: null, loaded: false };
      $("#browse").addEventListener("submit", e => {
        e.preventDefault();
        const form = e.target;
        state.browser.partition = Number(form.partition.value);
        state.browser.from = form.mode.value === "from" && form.from.value !== "" ? Number(form.from.value) : null;
        loadRecords();
      });
      break;
    case "group":
      app.innerHTML = '<h1>Consumer group <span id="group-name">' + esc(state.route.name) + '</span></h1><div id="cards" class="cards"></div>' +
        '<div class="panel"><h2>Members</h2><div id="members"></div></div>' +
        '<div class="panel"><h2>Lag per partition</h2><div id="offsets"></div></div>' +
        '<div class="panel"><h2>Total lag (records)</h2><canvas id="chart-lag" class="chart"></canvas><div id="lag-legend"></div></div>';
      break;
    case "broker":
      app.innerHTML = '<h1>Broker</h1><div id="cards" class="cards"></div><div class="panel"><h2>Status</h2><div id="broker-table"></div></div>';
      break;
    case "cluster":
      app.innerHTML = '<h1>Cluster</h1><div id="cluster"></div>';
      break;
  }
  update();
}

function update() {
  if (!state.route) return;
  if (state.error && !state.broker) {
    $("#app").innerHTML = '<p class="error">Cannot read the broker\'s API: ' + esc(state.error) + "</p>";
    return;
  }
  if (!state.broker) return;
  switch (state.route.view) {
    case "overview": overviewCards(); topicsTable(); groupsTable(); ratesChart(); lagChart(state.groups.map(g => g.group)); break;
    case "topics": topicsTable(); break;
    case "groups": groupsTable(); lagChart(state.groups.map(g => g.group)); break;
    case "topic": topicView(); break;
    case "group": groupView(); break;
    case "broker": brokerView(); break;
    case "cluster": clusterView(); break;
  }
}

function cards(items) {
  $("#cards").innerHTML = items.map(([label, value, attr]) =>
    '<div class="card"' + (attr ? " " + attr : "") + '><div class="label">' + esc(label) + '</div><div class="value">' + value + "</div></div>").join("");
}

function overviewCards() {
  const b = state.broker;
  const totalLag = state.groups.reduce((s, g) => s + g.totalLag, 0);
  cards([
    ["Records/s in", rate(last(state.rates.in)?.v), 'data-test="rate-in"'],
    ["Records/s out", rate(last(state.rates.out)?.v), 'data-test="rate-out"'],
    ["Topics", num(b.topics)], ["Partitions", num(b.partitions)],
    ["Stopped partitions", b.partitionsStopped ? '<span class="lag">' + num(b.partitionsStopped) + "</span>" : "0"],
    ["Consumer lag", num(totalLag), 'data-test="total-lag"'],
    ["Disk free", bytes(b.diskFreeBytes)], ["Uptime", duration(b.uptimeSeconds)],
  ]);
}

function topicsTable() {
  const rows = state.topics.map(t => {
    const r = last(state.rates.topic[t.name] || []);
    const stopped = t.partitions.filter(p => p.stopped).length;
    return '<tr data-topic="' + esc(t.name) + '"><td><a href="#/topics/' + encodeURIComponent(t.name) + '">' + esc(t.name) + "</a>" +
      (stopped ? ' <span class="badge bad">' + stopped + " stopped</span>" : "") + "</td>" +
      '<td class="num">' + t.partitions.length + '</td><td class="num" data-test="records">' + num(t.records) + "</td>" +
      '<td class="num" data-test="end-offsets">' + t.partitions.map(p => num(p.endOffset)).join(" · ") + "</td>" +
      '<td class="num">' + bytes(t.sizeBytes) + '</td><td class="num">' + millis(t.configs["retention.ms"]) +
      (t.configs["retention.bytes"] !== "-1" ? " / " + bytes(Number(t.configs["retention.bytes"])) : "") + "</td>" +
      '<td class="num" data-test="topic-rate">' + rate(r?.v) + "</td></tr>";
  }).join("");
  $("#topics-table").innerHTML = state.topics.length
    ? '<table><thead><tr><th>Topic</th><th class="num">Partitions</th><th class="num">Records</th><th class="num">End offsets</th><th class="num">Size</th><th class="num">Retention</th><th class="num">Records/s in</th></tr></thead><tbody>' + rows + "</tbody></table>"
    : '<p class="muted">No topics yet. Create one with <code>spool topic create NAME</code>.</p>';
}

function groupsTable() {
  const rows = state.groups.map(g =>
    '<tr data-group="' + esc(g.group) + '"><td><a href="#/groups/' + encodeURIComponent(g.group) + '">' + esc(g.group) + "</a></td>" +
    '<td><span class="badge' + (g.state === "Stable" ? " ok" : "") + '">' + esc(g.state) + "</span></td>" +
    '<td class="num">' + g.members.length + '</td><td class="num">' + g.offsets.length + "</td>" +
    '<td class="num' + (g.totalLag ? " lag" : "") + '" data-test="group-lag">' + num(g.totalLag) + "</td></tr>").join("");
  $("#groups-table").innerHTML = state.groups.length
    ? '<table><thead><tr><th>Group</th><th>State</th><th class="num">Members</th><th class="num">Partitions</th><th class="num">Lag</th></tr></thead><tbody>' + rows + "</tbody></table>"
    : '<p class="muted">No consumer groups yet.</p>';
}

function ratesChart() {
  drawChart($("#chart-rates"), [
    { color: "#2b6cb0", points: state.rates.in }, { color: "#d9822b", points: state.rates.out }], "rec/s");
}

function lagChart(groups) {
  const series = groups.map((g, i) => ({ color: PALETTE[i % PALETTE.length], label: g, points: state.rates.lag[g] || [] }));
  drawChart($("#chart-lag"), series, "records");
  const el = $("#lag-legend");
  if (el) el.innerHTML = series.length ? legend(series) : '<div class="legend">no groups</div>';
}

function topicView() {
  const t = state.topics.find(t => t.name === state.route.name);
  if (!t) { $("#partitions-table").innerHTML = '<p class="error">No topic ' + esc(state.route.name) + "</p>"; return; }
  cards([
    ["Partitions", num(t.partitions.length)], ["Records", num(t.records), 'data-test="records"'],
    ["Size", bytes(t.sizeBytes)], ["Records/s in", rate(last(state.rates.topic[t.name] || [])?.v)],
    ["Retention", millis(t.configs["retention.ms"])], ["Compression", esc(t.configs["compression.type"])],
  ]);
  $("#partitions-table").innerHTML = '<table><thead><tr><th>Partition</th><th class="num">Start offset</th><th class="num">End offset</th><th class="num">Records</th><th class="num">Size</th><th class="num">Segments</th><th>State</th></tr></thead><tbody>' +
    t.partitions.map(p => '<tr data-partition="' + p.partition + '"><td>' + p.partition + '</td><td class="num" data-test="start-offset">' + num(p.startOffset) +
      '</td><td class="num" data-test="end-offset">' + num(p.endOffset) + '</td><td class="num">' + num(p.endOffset - p.startOffset) +
      '</td><td class="num">' + bytes(p.sizeBytes) + '</td><td class="num">' + p.segments + "</td><td>" +
      (p.stopped ? '<span class="badge bad" title="' + esc(p.error || "") + '">stopped</span>' : '<span class="badge ok">ok</span>') + "</td></tr>").join("") +
    "</tbody></table>";
  const select = $("#browse-partition");
  if (select.options.length !== t.partitions.length) {
    select.innerHTML = t.partitions.map(p => '<option value="' + p.partition + '">' + p.partition + "</option>").join("");
    select.value = String(state.browser.partition);
  }
  const keys = Object.keys(t.configs).sort();
  $("#configs").innerHTML = '<div class="configs">' + keys.map(k =>
    "<div>" + (t.overrides[k] != null ? "<b>" + esc(k) + "</b>" : esc(k)) + " = <code>" + esc(t.configs[k]) + "</code></div>").join("") +
    '</div><p class="muted">Bold: set for this topic; the rest are broker defaults.</p>';
  drawChart($("#chart-topic"), [{ color: "#2b6cb0", points: state.rates.topic[t.name] || [] }], "rec/s");
  if (!state.browser.loaded) {
    // Start on the partition holding the most records, so the browser shows something.
    const fullest = t.partitions.reduce((a, p) => (p.endOffset - p.startOffset > a.endOffset - a.startOffset ? p : a), t.partitions[0]);
    state.browser.partition = fullest.partition;
    select.value = String(fullest.partition);
    state.browser.loaded = true;
    loadRecords();
  }
}

async function loadRecords() {
  const b = state.browser;
  const query = "limit=" + RECORD_LIMIT + (b.from != null ? "&from=" + b.from : "");
  const el = $("#records");
  try {
    const view = await getJSON("/v1/topics/" + encodeURIComponent(b.topic) + "/partitions/" + b.partition + "/records?" + query);
    $("#browse-info").textContent = view.records.length
      ? "offsets " + num(view.records[0].offset) + "–" + num(last(view.records).offset) + " of " + num(view.startOffset) + "–" + num(view.endOffset - 1)
      : "no records (log holds " + num(view.startOffset) + "–" + num(view.endOffset) + ")";
    el.innerHTML = view.records.length
      ? '<table class="records"><thead><tr><th class="num">Offset</th><th>Timestamp (UTC)</th><th>Key</th><th>Value</th><th>Headers</th></tr></thead><tbody>' +
        view.records.map(r => '<tr data-offset="' + r.offset + '"><td class="num">' + r.offset + "</td><td>" + esc(time(r.timestampMillis)) +
          '</td><td class="key">' + bytesView(r.key) + '</td><td class="value">' + bytesView(r.value) + "</td><td>" +
          r.headers.map(h => esc(h.key) + "=" + bytesView(h.value)).join("<br>") + "</td></tr>").join("") + "</tbody></table>"
      : "";
  } catch (e) {
    el.innerHTML = '<p class="error">' + esc(e.message) + "</p>";
  }
}

function groupView() {
  const g = state.groups.find(g => g.group === state.route.name);
  if (!g) { $("#offsets").innerHTML = '<p class="error">No group ' + esc(state.route.name) + "</p>"; return; }
  cards([["State", esc(g.state)], ["Members", num(g.members.length)], ["Generation", g.generation == null ? "–" : g.generation],
         ["Partitions", num(g.offsets.length)], ["Total lag", num(g.totalLag), 'data-test="group-lag"']]);
  $("#members").innerHTML = g.members.length
    ? '<table><thead><tr><th>Member</th><th>Client</th><th>Host</th><th>Assigned partitions</th></tr></thead><tbody>' +
      g.members.map(m => '<tr data-test="member"><td>' + esc(m.memberId) + "</td><td>" + esc(m.clientId) + "</td><td>" + esc(m.clientHost) + "</td><td>" +
        m.assignment.map(a => esc(a.topic) + "-" + a.partition).join(", ") + "</td></tr>").join("") + "</tbody></table>"
    : '<p class="muted">No active members: the group has committed offsets only.</p>';
  $("#offsets").innerHTML = !g.offsets.length ? '<p class="muted">No committed offsets yet.</p>' : '<table><thead><tr><th>Topic</th><th>Partition</th><th class="num">Committed</th><th class="num">End offset</th><th class="num">Lag</th><th>Committed at (UTC)</th></tr></thead><tbody>' +
    g.offsets.map(o => '<tr data-partition="' + esc(o.topic) + "-" + o.partition + '"><td><a href="#/topics/' + encodeURIComponent(o.topic) + '">' + esc(o.topic) + "</a></td><td>" + o.partition +
      '</td><td class="num">' + num(o.committedOffset) + '</td><td class="num">' + num(o.endOffset) + '</td><td class="num' + (o.lag ? " lag" : "") + '" data-test="lag">' + num(o.lag) +
      "</td><td>" + esc(time(o.commitTimestampMillis)) + "</td></tr>").join("") + "</tbody></table>";
  lagChart([g.group]);
}

function brokerView() {
  const b = state.broker;
  cards([["Version", esc(b.version)], ["Uptime", duration(b.uptimeSeconds)], ["Ready", b.ready ? '<span class="badge ok">ready</span>' : '<span class="badge bad">not ready</span>'],
         ["Disk free", bytes(b.diskFreeBytes)], ["Open descriptors", num(b.openDescriptors) + ' <span class="muted">/ ' + num(b.descriptorLimit) + "</span>"]]);
  const rows = [
    ["Listeners", b.listeners.map(l => esc(l.name) + " <code>" + esc(l.address) + "</code>").join("<br>")],
    ["Data directory", "<code>" + esc(b.dataDirectory) + "</code>"],
    ["Disk", bytes(b.diskFreeBytes) + " free of " + bytes(b.diskTotalBytes)],
    ["Started", esc(time(b.startedAtMillis))],
    ["Topics / partitions", num(b.topics) + " / " + num(b.partitions) + (b.partitionsStopped ? ' <span class="badge bad">' + b.partitionsStopped + " stopped</span>" : "")],
    ["Segment files open", num(b.segmentFilesOpen) + " of " + num(b.segmentFilesBudget) + " (max.open.files)"],
    ["Descriptors", num(b.openDescriptors) + " of " + num(b.descriptorLimit) + " (process limit)"],
    ["Records in / out", num(b.recordsIn) + " / " + num(b.recordsOut)],
    ["Bytes in / out", bytes(b.bytesIn) + " / " + bytes(b.bytesOut)],
  ];
  $("#broker-table").innerHTML = "<table><tbody>" + rows.map(([k, v]) => "<tr><th>" + k + "</th><td>" + v + "</td></tr>").join("") + "</tbody></table>";
}

// The cluster as this broker last learnt it from etcd (GET /v1/cluster): who is live, who is
// controller, and every partition's leader and ISR. Replicas out of the ISR are struck through
// (in red when their broker is not live); under-replicated and offline rows are tinted.
function clusterView() {
  const c = state.cluster, el = $("#cluster");
  if (!c) return;
  if (!c.clustered) {
    el.innerHTML = '<div class="panel"><p data-test="not-clustered"><b>Not clustered: this broker runs alone.</b></p>' +
      '<p class="muted">Brokers started with <code>--node-id N --etcd URL --cluster-id C</code> form a cluster; ' +
      "this page then lists them and every partition's leader and in-sync replicas.</p></div>";
    return;
  }
  el.innerHTML = '<div id="cards" class="cards"></div>' +
    '<div class="panel"><h2>Live brokers</h2>' + clusterBrokers(c) + "</div>" +
    '<div class="panel"><h2>Partitions</h2>' + clusterPartitions(c) + "</div>";
  cards([
    ["This broker", c.nodeId == null ? "–" : node(c.nodeId), 'data-test="this-node"'],
    ["Controller", node(c.controllerId), 'data-test="controller"'],
    ["Live brokers", num(c.brokers.length), 'data-test="live-brokers"'],
    ["Partitions", num(c.partitions.length), 'data-test="partition-count"'],
    ["Under-replicated", c.underReplicatedPartitions ? '<span class="lag">' + num(c.underReplicatedPartitions) + "</span>" : "0", 'data-test="under-replicated"'],
    ["Offline", c.offlinePartitions ? '<span class="lag">' + num(c.offlinePartitions) + "</span>" : "0", 'data-test="offline"'],
  ]);
}

function node(id) { return id >= 0 ? esc(String(id)) : '<span class="badge bad">none</span>'; }

function clusterBrokers(c) {
  if (!c.brokers.length) return '<p class="error">No live broker registered in etcd (this one has lost its registration?).</p>';
  return '<table><thead><tr><th>Node</th><th>Kafka address</th><th>Native address</th><th>Role</th></tr></thead><tbody>' +
    c.brokers.map(b => '<tr data-broker="' + esc(String(b.nodeId)) + '"><td>' + esc(String(b.nodeId)) + "</td><td><code>" + esc(b.kafkaAddress) +
      "</code></td><td>" + (b.nativeAddress ? "<code>" + esc(b.nativeAddress) + "</code>" : '<span class="muted">–</span>') + "</td><td>" +
      (b.nodeId === c.controllerId ? '<span class="badge" data-test="is-controller">controller</span> ' : "") +
      (b.nodeId === c.nodeId ? '<span class="badge ok" data-test="is-this-broker">this broker</span>' : "") + "</td></tr>").join("") +
    "</tbody></table>";
}

function clusterPartitions(c) {
  if (!c.partitions.length) return '<p class="muted">No topics yet. Create one with <code>spool topic create NAME --replication-factor 3</code>.</p>';
  const replica = (p, id) => {
    const offline = p.offlineReplicas.includes(id), outOfSync = p.outOfSyncReplicas.includes(id);
    const kind = offline ? "offline" : outOfSync ? "out-of-sync" : "in-sync";
    const title = offline ? "broker not live" : outOfSync ? "not in the ISR" : "in the ISR";
    return '<span class="replica ' + kind + '" data-replica="' + esc(String(id)) + '" title="' + title + '">' + esc(String(id)) + "</span>";
  };
  return '<table><thead><tr><th>Topic</th><th class="num">Partition</th><th class="num">Leader</th><th class="num">Epoch</th><th>Replicas</th><th>ISR</th><th>State</th></tr></thead><tbody>' +
    c.partitions.map(p => {
      const kind = p.offline ? "offline" : p.underReplicated ? "under-replicated" : "ok";
      return '<tr class="' + kind + '" data-partition="' + esc(p.topic) + "-" + esc(String(p.partition)) + '" data-state="' + kind + '">' +
        '<td><a href="#/topics/' + encodeURIComponent(p.topic) + '">' + esc(p.topic) + '</a></td><td class="num">' + esc(String(p.partition)) +
        '</td><td class="num" data-test="leader">' + node(p.leader) + '</td><td class="num">' + num(p.leaderEpoch) +
        "</td><td>" + p.replicas.map(id => replica(p, id)).join(" ") +
        '</td><td data-test="isr" data-count="' + p.isr.length + '">' + p.isr.map(id => esc(String(id))).join(", ") + "</td><td>" +
        (p.offline ? '<span class="badge bad">offline</span> ' : "") +
        (p.underReplicated ? '<span class="badge warn">under-replicated</span>' : p.offline ? "" : '<span class="badge ok">in sync</span>') + "</td></tr>";
    }).join("") + "</tbody></table>" +
    '<p class="muted">Replicas: <span class="replica in-sync">n</span> in the ISR, <span class="replica out-of-sync">n</span> not in the ISR, ' +
    '<span class="replica offline">n</span> broker not live.</p>';
}

// ---------- start ----------

$("#interval").textContent = POLL_MS / 1000;
window.addEventListener("hashchange", mount);
window.addEventListener("resize", update);
mount();
poll();
setInterval(poll, POLL_MS);
