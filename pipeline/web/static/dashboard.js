// imgpipe dashboard: polls the worker API (any worker answers for the whole group).
"use strict";

const STATES = ["QUEUED", "PROCESSING", "RETRYING", "DONE", "FAILED", "REJECTED"];
const PRIORITIES = ["high", "normal", "low"];
const OUTCOMES = ["done", "failed", "rejected"];
const LAG_SERIES = { ingest: "#7a5af8", high: "#d92d20", normal: "#175cd3", low: "#8a93a6",
  retry: "#f79009" };
const POLL_MS = 2000;
const PAGE_SIZE = 25;
const SVG = "http://www.w3.org/2000/svg";
const THUMBS_KEPT = 200;

const view = { offset: 0, total: 0, openJob: null };
const thumbs = new Map(); // "job|variant|updated_at" -> object URL (newest last)

const $ = (selector) => document.querySelector(selector);

function el(tag, attrs = {}, ...children) {
  const node = tag.startsWith("svg:") ? document.createElementNS(SVG, tag.slice(4))
    : document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.setAttribute("class", value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children) {
    node.append(child instanceof Node ? child : document.createTextNode(child ?? ""));
  }
  return node;
}

class AuthNeeded extends Error {}

async function api(path, asBlob = false) {
  const headers = {};
  const token = localStorage.getItem("imgpipe-token");
  if (token) headers.Authorization = `Bearer ${token}`;
  const response = await fetch(path, { headers });
  if (response.status === 401) throw new AuthNeeded();
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
  return asBlob ? response.blob() : response.json();
}

function time(epoch) {
  return epoch ? new Date(epoch * 1000).toLocaleTimeString() : "";
}

function outputUrl(jobId, variant) {
  return `/api/jobs/${encodeURIComponent(jobId)}/outputs/${encodeURIComponent(variant)}`;
}

// --- summary panels ------------------------------------------------------------------

function renderCounts(stats) {
  const cards = STATES.map((state) => el("div", { class: "card", "data-state": state },
    state, el("b", { class: `s-${state}` }, String(stats.jobs[state] || 0))));
  $("#counts").replaceChildren(...cards);
}

function renderQueues(stats) {
  const byPriority = stats.jobs_by_priority || {};
  const lag = stats.lag_by_priority || {};
  const rows = PRIORITIES.map((priority) => el("tr", {}, el("td", {}, priority),
    el("td", {}, String(byPriority.QUEUED?.[priority] || 0)),
    el("td", {}, String(byPriority.PROCESSING?.[priority] || 0)),
    el("td", {}, String(byPriority.RETRYING?.[priority] || 0)),
    el("td", { "data-lag": priority }, priority in lag ? String(lag[priority]) : "–")));
  $("#queues tbody").replaceChildren(...rows);
}

function renderWorkers(stats) {
  const workers = stats.workers || [];
  const rows = workers.map((w) => el("tr", { "data-worker": w.worker },
    el("td", {}, el("code", {}, w.worker)),
    el("td", { class: "partitions" }, w.partitions.join(", ") || "none"),
    el("td", {}, String(w.in_flight))));
  $("#workers tbody").replaceChildren(...(rows.length ? rows
    : [el("tr", {}, el("td", { colspan: "3", class: "muted" }, "admins only"))]));
}

function renderChart(stats) {
  const width = stats.throughput.window_seconds;
  const now = Date.now() / 1000;
  const first = Math.floor((now - 3600) / width) * width;
  const slots = Math.ceil(3600 / width) + 1;
  const counts = Array.from({ length: slots }, () => ({ done: 0, failed: 0, rejected: 0 }));
  for (const w of stats.throughput.windows) {
    const slot = Math.round((w.start - first) / width);
    if (slot >= 0 && slot < slots && w.outcome in counts[slot]) counts[slot][w.outcome] += w.count;
  }
  const peak = Math.max(1, ...counts.map((c) => c.done + c.failed + c.rejected));
  const barWidth = 600 / slots;
  const bars = [];
  counts.forEach((c, i) => {
    let y = 120;
    for (const outcome of OUTCOMES) {
      const h = (c[outcome] / peak) * 110;
      if (!h) continue;
      y -= h;
      bars.push(el("svg:rect", { x: i * barWidth, y, width: Math.max(1, barWidth - 1),
        height: h, class: outcome },
      el("svg:title", {}, `${time(first + i * width)}: ${c[outcome]} ${outcome}`)));
    }
  });
  $("#chart").replaceChildren(...bars);
}

function renderLag(stats) {
  const samples = stats.lag_history || [];
  const now = Date.now() / 1000;
  const peak = Math.max(1, ...samples.flatMap((s) => Object.values(s.lag)));
  const lines = Object.entries(LAG_SERIES).map(([series, colour]) => {
    const points = samples.filter((s) => series in s.lag).map((s) => {
      const x = Math.max(0, 600 - ((now - s.at) / 3600) * 600);
      return `${x.toFixed(1)},${(118 - (s.lag[series] / peak) * 110).toFixed(1)}`;
    });
    if (points.length === 1) points.push(points[0].replace(/^[^,]+/, "600")); // to now
    return el("svg:polyline", { points: points.join(" "), stroke: colour,
      "data-series": series }, el("svg:title", {}, series));
  });
  $("#lag-chart").replaceChildren(...lines);
  const latest = samples.length ? samples[samples.length - 1].lag : {};
  $("#lag-legend").replaceChildren(...Object.entries(LAG_SERIES).map(([series, colour]) =>
    el("span", { "data-series": series, style: `--series: ${colour}` },
      `${series} ${latest[series] ?? "–"}  `)),
  el("span", { class: "muted" }, samples.length ? `peak ${peak}` : "admins only"));
}

// --- the job list ----------------------------------------------------------------------

async function thumbnail(job) {
  const outputs = job.outputs || [];
  if (job.status !== "DONE" || !outputs.length) return null;
  const smallest = outputs.reduce((a, b) => (a.width * a.height <= b.width * b.height ? a : b));
  const key = `${job.job_id}|${smallest.variant}|${job.updated_at}`;
  if (!thumbs.has(key)) {
    const blob = await api(outputUrl(job.job_id, smallest.variant), true);
    thumbs.set(key, URL.createObjectURL(blob));
    while (thumbs.size > THUMBS_KEPT) {
      const [oldest, url] = thumbs.entries().next().value;
      URL.revokeObjectURL(url);
      thumbs.delete(oldest);
    }
  }
  return thumbs.get(key);
}

function renderJobs(jobs) {
  const rows = jobs.map((job) => {
    const img = el("img", { alt: "", "data-thumb": job.job_id });
    thumbnail(job).then((url) => { if (url) img.src = url; }).catch(() => {});
    return el("tr", {
      class: job.job_id === view.openJob ? "job open" : "job",
      "data-job": job.job_id, onclick: () => showJob(job.job_id),
    }, el("td", { class: "thumb" }, img),
    el("td", {}, el("code", {}, job.job_id)),
    el("td", { class: "name", title: [job.name, job.label].filter(Boolean).join(" — ") },
      job.name || ""),
    el("td", { class: `s-${job.status}`, "data-status": "" }, job.status),
    el("td", {}, job.priority || ""), el("td", {}, job.tenant || ""),
    el("td", {}, String((job.outputs || []).length)),
    el("td", { class: "when" }, time(job.updated_at)));
  });
  $("#jobs tbody").replaceChildren(...(rows.length ? rows
    : [el("tr", {}, el("td", { colspan: "8", class: "muted" }, "no jobs match"))]));
  const last = Math.min(view.total, view.offset + jobs.length);
  $("#page-info").textContent = view.total
    ? `${view.offset + 1}–${last} of ${view.total}` : "0 jobs";
  $("#page-prev").disabled = view.offset === 0;
  $("#page-next").disabled = last >= view.total;
}

function replayHint(record) {
  return `imgpipe replay --topic dlq --partition ${record.partition} `
    + `--from-offset ${record.offset} --to-offset ${record.offset}`;
}

function renderDeadLetters(records) {
  const rows = records.map((r) => el("tr", {},
    el("td", {}, time(r.timestamp)), el("td", {}, el("code", {}, r.job_id || "–")),
    el("td", {}, r.stage || ""), el("td", {}, r.reason || ""), el("td", {}, r.error || ""),
    el("td", {}, el("code", { class: "hint" }, replayHint(r)))));
  $("#dlq tbody").replaceChildren(...rows);
}

// --- the open job ----------------------------------------------------------------------

function facts(job) {
  const pairs = [["state", el("b", { class: `s-${job.status}`, id: "detail-status" },
    job.status)], ["file", job.name || "–"], ["label", job.label || "–"],
  ["tenant", job.tenant || "–"], ["priority", job.priority || "–"],
  ["attempts", String(job.attempts || 0)], ["submitted", time(job.submitted_at)],
  ["updated", time(job.updated_at)]];
  if (job.error) pairs.push(["error", `${job.error} (${job.error_code})`]);
  pairs.push(...sourceFacts(job.image));
  return el("dl", { class: "facts" }, ...pairs.flatMap(([k, v]) => [el("dt", {}, k),
    el("dd", { "data-fact": k }, v)]));
}

// What the job learnt about its source (docs/api.md): size, format, camera, colour.
function sourceFacts(image) {
  if (!image) return [];
  const pairs = [["source", `${image.width}×${image.height} ${image.format}, ` +
    `${image.bit_depth}-bit${image.alpha ? ", alpha" : ""}` +
    `${image.animated ? `, ${image.frames} frames` : ""}`]];
  if (image.icc) pairs.push(["colour profile", image.icc]);
  const camera = [image.camera_make, image.camera_model].filter(Boolean).join(" ");
  if (camera) pairs.push(["camera", image.lens ? `${camera}, ${image.lens}` : camera]);
  if (image.taken_at) pairs.push(["taken", image.taken_at.replace("T", " ")]);
  if (image.gps) pairs.push(["location", "present in the file (never kept)"]);
  if (/^#[0-9a-f]{6}$/.test(image.colour || "")) {
    pairs.push(["dominant colour", el("span", {}, el("span", {
      class: "swatch", style: `background:${image.colour}` }), ` ${image.colour}`)]);
  }
  if (image.placeholder) pairs.push(["placeholder", el("code", {}, image.placeholder)]);
  return pairs;
}

async function showJob(jobId) {
  view.openJob = jobId;
  for (const row of document.querySelectorAll("tr.job")) {
    row.classList.toggle("open", row.dataset.job === jobId);
  }
  const job = await api(`/api/jobs/${encodeURIComponent(jobId)}`);
  if (view.openJob !== jobId) return; // another job was clicked meanwhile
  $("#detail-empty").hidden = true;
  $("#detail-job").hidden = false;
  $("#detail").classList.add("open");
  $("#detail-id").textContent = jobId;
  const figures = await Promise.all((job.outputs || []).map(async (out) => {
    const img = el("img", { alt: out.variant, "data-variant": out.variant });
    try {
      img.src = URL.createObjectURL(await api(outputUrl(jobId, out.variant), true));
    } catch (err) { img.alt = `${out.variant}: ${err.message}`; }
    return el("figure", {}, img, el("figcaption", {},
      `${out.variant}: ${out.width}×${out.height} ${out.format}, ${out.bytes} B`));
  }));
  const history = el("ol", {}, ...(job.history || []).map((h) =>
    el("li", {}, `${h.status} at ${time(h.at)}${h.error ? ` (${h.error})` : ""}`)));
  $("#detail-body").replaceChildren(facts(job), el("div", { class: "outputs" }, ...figures),
    el("h3", {}, "History"), history);
  $("#detail").scrollIntoView({ block: "nearest" });
}

function closeJob() {
  view.openJob = null;
  $("#detail-job").hidden = true;
  $("#detail-empty").hidden = false;
  $("#detail").classList.remove("open");
  for (const row of document.querySelectorAll("tr.job.open")) row.classList.remove("open");
}

// --- polling -----------------------------------------------------------------------------

function jobQuery() {
  const query = new URLSearchParams({ limit: String(PAGE_SIZE), offset: String(view.offset) });
  const text = $("#search").value.trim();
  if (text) query.set("q", text);
  if ($("#filter-status").value) query.set("status", $("#filter-status").value);
  if ($("#filter-priority").value) query.set("priority", $("#filter-priority").value);
  return query;
}

async function refresh() {
  try {
    const [stats, jobs, dlq] = await Promise.all([
      api("/api/stats"), api(`/api/jobs?${jobQuery()}`), api("/api/deadletters?limit=20")]);
    view.total = jobs.total || 0;
    renderCounts(stats);
    renderQueues(stats);
    renderWorkers(stats);
    renderChart(stats);
    renderLag(stats);
    renderJobs(jobs.jobs);
    renderDeadLetters(dlq.records);
    const problems = [...(stats.errors || []), ...(jobs.errors || [])];
    $("#status").textContent = problems.length ? `partial: ${problems.join("; ")}`
      : `${stats.partitions.length} partitions · updated ${new Date().toLocaleTimeString()}`;
    $("#token-form").hidden = true;
    if (view.openJob && $("#detail-status")?.textContent !== "DONE") await showJob(view.openJob);
  } catch (err) {
    if (err instanceof AuthNeeded) {
      $("#token-form").hidden = false;
      $("#status").textContent = "this API needs a token";
    } else {
      $("#status").textContent = `error: ${err.message}`;
    }
  }
}

function restart() {
  view.offset = 0;
  refresh();
}

let typing = null;
$("#search").addEventListener("input", () => {
  clearTimeout(typing);
  typing = setTimeout(restart, 300);
});
$("#token-form").addEventListener("submit", (event) => {
  event.preventDefault();
  localStorage.setItem("imgpipe-token", $("#token").value);
  refresh();
});
$("#filter-status").addEventListener("change", restart);
$("#filter-priority").addEventListener("change", restart);
$("#page-prev").addEventListener("click", () => {
  view.offset = Math.max(0, view.offset - PAGE_SIZE);
  refresh();
});
$("#page-next").addEventListener("click", () => {
  view.offset += PAGE_SIZE;
  refresh();
});
$("#detail-close").addEventListener("click", closeJob);
document.addEventListener("keydown", (event) => { if (event.key === "Escape") closeJob(); });
refresh();
setInterval(refresh, POLL_MS);
