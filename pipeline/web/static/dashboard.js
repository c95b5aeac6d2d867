// imgpipe dashboard: polls the worker API (any worker answers for the whole group).
"use strict";

const STATES = ["QUEUED", "PROCESSING", "RETRYING", "DONE", "FAILED", "REJECTED"];
const PRIORITIES = ["high", "normal", "low"];
const OUTCOMES = ["done", "failed", "rejected"];
const POLL_MS = 2000;
let openJob = null;

const $ = (selector) => document.querySelector(selector);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
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

function renderCounts(stats) {
  const cards = STATES.map((state) => el("div", { class: "card", "data-state": state },
    state, el("b", { class: `s-${state}` }, String(stats.jobs[state] || 0))));
  $("#counts").replaceChildren(...cards);
}

function renderQueues(stats) {
  const byPriority = stats.jobs_by_priority || {};
  const lag = stats.lag_by_priority || {};
  const rows = PRIORITIES.map((priority) => {
    return el("tr", {}, el("td", {}, priority),
      el("td", {}, String(byPriority.QUEUED?.[priority] || 0)),
      el("td", {}, String(byPriority.PROCESSING?.[priority] || 0)),
      el("td", {}, String(byPriority.RETRYING?.[priority] || 0)),
      el("td", { "data-lag": priority }, priority in lag ? String(lag[priority]) : "–"));
  });
  $("#queues tbody").replaceChildren(...rows);
}

function renderChart(stats) {
  const svg = $("#chart");
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
  const ns = "http://www.w3.org/2000/svg";
  const bars = [];
  counts.forEach((c, i) => {
    let y = 140;
    for (const outcome of OUTCOMES) {
      const h = (c[outcome] / peak) * 130;
      if (!h) continue;
      y -= h;
      const rect = document.createElementNS(ns, "rect");
      rect.setAttribute("x", i * barWidth);
      rect.setAttribute("y", y);
      rect.setAttribute("width", Math.max(1, barWidth - 1));
      rect.setAttribute("height", h);
      rect.setAttribute("class", outcome);
      const title = document.createElementNS(ns, "title");
      title.textContent = `${time(first + i * width)}: ${c[outcome]} ${outcome}`;
      rect.append(title);
      bars.push(rect);
    }
  });
  svg.replaceChildren(...bars);
}

function renderJobs(jobs) {
  const rows = jobs.map((job) => el("tr", {
    class: "job", "data-job": job.job_id, onclick: () => showJob(job.job_id),
  }, el("td", {}, el("code", {}, job.job_id)),
  el("td", { class: "name", title: job.label || "" }, job.name || ""),
  el("td", { class: `s-${job.status}` }, job.status),
  el("td", {}, job.priority || ""), el("td", {}, job.tenant || ""),
  el("td", {}, String((job.outputs || []).length)), el("td", {}, time(job.updated_at))));
  $("#jobs tbody").replaceChildren(...rows);
}

function renderDeadLetters(records) {
  const rows = records.map((r) => el("tr", {},
    el("td", {}, time(r.timestamp)), el("td", {}, el("code", {}, r.job_id || "–")),
    el("td", {}, r.stage || ""), el("td", {}, r.reason || ""), el("td", {}, r.error || ""),
    el("td", {}, r.job_id
      ? el("code", { class: "hint" }, `imgpipe replay --topic dlq --filter job_id=${r.job_id}`)
      : "–")));
  $("#dlq tbody").replaceChildren(...rows);
}

async function showJob(jobId) {
  openJob = jobId;
  const job = await api(`/api/jobs/${encodeURIComponent(jobId)}`);
  $("#detail").hidden = false;
  $("#detail-id").textContent = jobId;
  const history = el("ol", {}, ...(job.history || []).map((h) =>
    el("li", {}, `${h.status} at ${time(h.at)}`)));
  const figures = await Promise.all((job.outputs || []).map(async (out) => {
    const img = el("img", { alt: out.variant, "data-variant": out.variant });
    try {
      const blob = await api(`/api/jobs/${encodeURIComponent(jobId)}/outputs/${out.variant}`, true);
      img.src = URL.createObjectURL(blob);
    } catch (err) { img.alt = `${out.variant}: ${err.message}`; }
    return el("figure", {}, img, el("figcaption", {},
      `${out.variant}: ${out.width}×${out.height} ${out.format}, ${out.bytes} B`));
  }));
  const summary = el("p", {}, "state ", el("b", { class: `s-${job.status}`, id: "detail-status" },
    job.status), ` · priority ${job.priority || "?"} · attempts ${job.attempts || 0}`,
  job.name ? ` · file ${job.name}` : "", job.label ? ` · label ${job.label}` : "",
  job.error ? ` · error: ${job.error}` : "");
  $("#detail-body").replaceChildren(summary, el("div", { class: "outputs" }, ...figures),
    el("h3", {}, "History"), history);
}

async function refresh() {
  const status = $("#filter-status").value;
  const priority = $("#filter-priority").value;
  const query = new URLSearchParams({ limit: "50" });
  if (status) query.set("status", status);
  if (priority) query.set("priority", priority);
  try {
    const [stats, jobs, dlq] = await Promise.all([
      api("/api/stats"), api(`/api/jobs?${query}`), api("/api/deadletters?limit=20")]);
    renderCounts(stats);
    renderQueues(stats);
    renderChart(stats);
    renderJobs(jobs.jobs);
    renderDeadLetters(dlq.records);
    const problems = [...(stats.errors || []), ...(jobs.errors || [])];
    $("#status").textContent = problems.length ? `partial: ${problems.join("; ")}`
      : `${stats.partitions.length} partitions · updated ${new Date().toLocaleTimeString()}`;
    $("#token-form").hidden = true;
    if (openJob && $("#detail-status")?.textContent !== "DONE") await showJob(openJob);
  } catch (err) {
    if (err instanceof AuthNeeded) {
      $("#token-form").hidden = false;
      $("#status").textContent = "this API needs a token";
    } else {
      $("#status").textContent = `error: ${err.message}`;
    }
  }
}

$("#token-form").addEventListener("submit", (event) => {
  event.preventDefault();
  localStorage.setItem("imgpipe-token", $("#token").value);
  refresh();
});
$("#filter-status").addEventListener("change", refresh);
$("#filter-priority").addEventListener("change", refresh);
$("#detail-close").addEventListener("click", () => { openJob = null; $("#detail").hidden = true; });
refresh();
setInterval(refresh, POLL_MS);
