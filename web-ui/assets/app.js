// Tandem's web UI: a little plain JavaScript on top of server-rendered
// pages. Every action calls the node's JSON API with the page's CSRF token
// and shows progress, then the result or what went wrong.
"use strict";

const CSRF = document.querySelector('meta[name="csrf"]')?.content || "";

async function api(method, url, body) {
  const options = { method, credentials: "same-origin", headers: { "X-Tandem-CSRF": CSRF } };
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(url, options);
  } catch (e) {
    throw new Error("The node did not answer. Is `tandem up` still running?");
  }
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
  if (!response.ok) {
    throw new Error((data && data.error) || text || response.statusText);
  }
  return data;
}

function statusOf(el) {
  let status = el.querySelector(":scope > .status") || el.parentElement.querySelector(":scope > .status");
  if (!status) {
    status = document.createElement("div");
    status.className = "status";
    status.setAttribute("role", "status");
    el.after(status);
  }
  return status;
}

function show(status, kind, text) {
  status.className = "status " + kind;
  status.textContent = text;
}

// Collects a form into a JSON body: `data-list` fields become arrays,
// checkboxes booleans, `data-number` fields numbers, and empty optional
// fields are left out.
function formBody(form) {
  const body = {};
  for (const field of form.elements) {
    if (!field.name || field.type === "submit" || field.type === "file") continue;
    if (field.type === "checkbox") { body[field.name] = field.checked; continue; }
    // A notebook cell conflict's choice: `cells[path][conflict] = value`.
    if (field.type === "radio") {
      if (!field.checked) continue;
      if (field.dataset.path !== undefined) {
        body.cells = body.cells || {};
        body.cells[field.dataset.path] = body.cells[field.dataset.path] || {};
        body.cells[field.dataset.path][field.dataset.conflict] = field.value;
      } else {
        body[field.name] = field.value;
      }
      continue;
    }
    const value = field.value.trim();
    if (field.dataset.list !== undefined) {
      body[field.name] = value.split(/[\s,]+/).filter(Boolean);
    } else if (value === "" && !field.required && field.dataset.keepEmpty === undefined) {
      continue;
    } else if (field.dataset.number !== undefined) {
      body[field.name] = Number(value);
    } else if (field.tagName === "TEXTAREA" && field.dataset.raw !== undefined) {
      body[field.name] = field.value;
    } else {
      body[field.name] = value;
    }
  }
  return body;
}

function describe(result, fallback) {
  if (result && typeof result.message === "string") return result.message;
  return fallback || "Done.";
}

function after(then, result) {
  if (!then || then === "reload") { setTimeout(() => location.reload(), 400); return; }
  if (then === "none") return;
  // `fill:FIELD:SELECTOR`: show the answer's FIELD (an invite link) in the
  // field SELECTOR names, selected for copying; the page stays.
  if (then.startsWith("fill:")) {
    const rest = then.slice(5);
    const at = rest.indexOf(":");
    const target = document.querySelector(rest.slice(at + 1));
    const value = result ? result[rest.slice(0, at)] : undefined;
    if (at > 0 && target && typeof value === "string") {
      target.value = value;
      target.hidden = false;
      target.select();
    }
    return;
  }
  if (then.startsWith("go:")) { setTimeout(() => { location.href = then.slice(3); }, 300); return; }
  if (then === "go-project" && result && result.name) {
    setTimeout(() => { location.href = "/p/" + encodeURIComponent(result.name); }, 300);
    return;
  }
  if (then === "open" && result && result.url) { window.open(result.url, "_blank", "noopener"); setTimeout(() => location.reload(), 400); }
}

async function run(el, method, url, body) {
  if (el.dataset.confirm && !window.confirm(el.dataset.confirm)) return;
  const status = statusOf(el);
  const buttons = el.tagName === "FORM" ? el.querySelectorAll("button") : [el];
  buttons.forEach((b) => { b.disabled = true; });
  show(status, "busy", el.dataset.busy || "Working…");
  try {
    const result = await api(method, url, body);
    show(status, "ok", describe(result, el.dataset.done));
    after(el.dataset.then, result);
  } catch (e) {
    show(status, "bad", e.message);
  } finally {
    buttons.forEach((b) => { b.disabled = false; });
  }
}

document.addEventListener("submit", (event) => {
  const form = event.target;
  if (!form.dataset.api) return;
  event.preventDefault();
  run(form, form.dataset.method || "POST", form.dataset.api, formBody(form));
});

// A form whose URL names one of its fields: `data-api-template` with
// `{field}`; that field goes into the URL, not the body.
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (!form.dataset.apiTemplate) return;
  event.preventDefault();
  const body = formBody(form);
  const url = form.dataset.apiTemplate.replace(/\{(\w+)\}/g, (_, name) => {
    const value = body[name] || "";
    delete body[name];
    return encodeURIComponent(value);
  });
  run(form, form.dataset.method || "POST", url, body);
});

document.addEventListener("click", (event) => {
  const button = event.target.closest("button[data-api]");
  if (button) {
    event.preventDefault();
    const body = button.dataset.body ? JSON.parse(button.dataset.body) : undefined;
    run(button, button.dataset.method || "POST", button.dataset.api, body);
    return;
  }
  const copy = event.target.closest("button[data-copy]");
  if (copy) {
    const text = copy.dataset.copy;
    const done = () => { copy.textContent = "Copied"; setTimeout(() => { copy.textContent = "Copy"; }, 1500); };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, () => fallbackCopy(text, done));
    } else {
      fallbackCopy(text, done);
    }
  }
});

function fallbackCopy(text, done) {
  const area = document.createElement("textarea");
  area.value = text;
  document.body.appendChild(area);
  area.select();
  try { document.execCommand("copy"); done(); } catch (e) { /* the text stays selectable on the page */ }
  area.remove();
}

// Uploads: drop files on a `[data-upload]` zone or pick them; each file is
// sent as it is, with a progress bar, then the page reloads.
function uploadOne(url, file, bar) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("PUT", url);
    xhr.setRequestHeader("X-Tandem-CSRF", CSRF);
    xhr.upload.onprogress = (e) => { if (e.lengthComputable) { bar.max = e.total; bar.value = e.loaded; } };
    xhr.onload = () => {
      if (xhr.status >= 200 && xhr.status < 300) {
        bar.value = bar.max;
        let result = null;
        try { result = JSON.parse(xhr.responseText); } catch (e) { /* no body */ }
        resolve(result);
        return;
      }
      let message = xhr.statusText;
      try { message = JSON.parse(xhr.responseText).error || message; } catch (e) { /* keep the status text */ }
      reject(new Error(file.name + ": " + message));
    };
    xhr.onerror = () => reject(new Error(file.name + ": the upload was interrupted"));
    xhr.send(file);
  });
}

async function uploadFiles(zone, files) {
  const status = statusOf(zone);
  const list = zone.querySelector(".uploads") || zone;
  let failed = 0;
  for (const file of files) {
    const row = document.createElement("div");
    const bar = document.createElement("progress");
    bar.max = Math.max(file.size, 1); bar.value = 0;
    row.append(document.createTextNode(file.name + " "), bar);
    list.append(row);
    const section = zone.querySelector("select[name=section]")?.value || zone.dataset.section || "input";
    const url = zone.dataset.upload + "/" + encodeURIComponent(section) + "/" + file.name.split("/").map(encodeURIComponent).join("/");
    show(status, "busy", "Uploading " + file.name + "…");
    try { await uploadOne(url, file, bar); } catch (e) { failed += 1; show(status, "bad", e.message); }
  }
  if (!failed) { show(status, "ok", "Uploaded " + files.length + " file(s)."); setTimeout(() => location.reload(), 500); }
}

for (const zone of document.querySelectorAll("[data-upload]")) {
  const input = zone.querySelector("input[type=file]");
  input?.addEventListener("change", () => uploadFiles(zone, Array.from(input.files)));
  zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => { e.preventDefault(); zone.classList.remove("over"); uploadFiles(zone, Array.from(e.dataTransfer.files)); });
}

// Importing a project: the .zip goes up as it is, then the new project
// opens.
for (const zone of document.querySelectorAll("[data-import]")) {
  const input = zone.querySelector("input[type=file]");
  const go = async (file) => {
    if (!file) return;
    const status = statusOf(zone);
    const bar = document.createElement("progress");
    bar.max = Math.max(file.size, 1);
    zone.querySelector(".uploads").append(bar);
    show(status, "busy", "Importing " + file.name + "…");
    try {
      const result = await uploadOne(zone.dataset.import, file, bar);
      show(status, "ok", "Imported " + file.name + ".");
      after("go-project", result);
    } catch (e) {
      show(status, "bad", e.message);
    }
  };
  input?.addEventListener("change", () => go(input.files[0]));
  zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => { e.preventDefault(); zone.classList.remove("over"); go(e.dataTransfer.files[0]); });
}

// Long jobs: a button that starts one and a poller that shows its progress.
async function longJob(button, poll) {
  const status = statusOf(button);
  const progress = document.querySelector(button.dataset.progress || "#progress");
  const log = document.querySelector(button.dataset.log || "#log");
  button.disabled = true;
  show(status, "busy", button.dataset.busy || "Working…");
  let done = false;
  const timer = setInterval(async () => {
    if (done) return;
    try { await poll(progress, log, status); } catch (e) { /* the job itself reports errors */ }
  }, 500);
  try {
    const result = await api("POST", button.dataset.job, button.dataset.body ? JSON.parse(button.dataset.body) : {});
    done = true;
    if (progress) { progress.max = 1; progress.value = 1; }
    if (log && result && Array.isArray(result.log)) log.textContent = result.log.join("\n");
    show(status, "ok", button.dataset.describe === "build" ? describeBuild(result) : describe(result, "Done."));
    if (button.dataset.then) after(button.dataset.then, result);
  } catch (e) {
    done = true;
    show(status, "bad", e.message);
    if (log) log.textContent = e.message;
  } finally {
    clearInterval(timer);
    button.disabled = false;
  }
}

function describeBuild(result) {
  if (!result) return "Built.";
  if (!result.rebuilt) return "Up to date: nothing to build (" + result.image + ").";
  return "Built " + result.image + " in " + result.seconds.toFixed(1) + " s (" + result.cached_steps + " of " + result.steps + " steps cached).";
}

document.addEventListener("click", (event) => {
  const build = event.target.closest("button[data-job][data-describe=build]");
  if (build) {
    event.preventDefault();
    longJob(build, async (progress, log) => {
      const builds = await api("GET", "/api/builds");
      const mine = (builds || []).find((b) => b.project === build.dataset.project);
      if (!mine) return;
      if (progress && mine.total) { progress.max = mine.total; progress.value = mine.step; }
      if (log && mine.line && mine.line !== build.dataset.lastLine) {
        build.dataset.lastLine = mine.line;
        log.textContent += mine.line + "\n";
        log.scrollTop = log.scrollHeight;
      }
    });
    return;
  }
  const fetchButton = event.target.closest("button[data-job][data-describe=fetch]");
  if (fetchButton) {
    event.preventDefault();
    longJob(fetchButton, async (progress) => {
      const transfers = await api("GET", "/api/transfers");
      const mine = (transfers || []).find((t) => t.project === fetchButton.dataset.project && t.path === fetchButton.dataset.path);
      if (mine && progress) { progress.max = Math.max(mine.total, 1); progress.value = mine.done; }
    });
  }
});

// Update badges for pinned packages, on request (the lookup runs the
// package manager in a container, so it takes a few seconds).
document.addEventListener("click", async (event) => {
  const button = event.target.closest("button[data-outdated]");
  if (!button) return;
  event.preventDefault();
  const status = statusOf(button);
  button.disabled = true;
  show(status, "busy", "Asking the package managers…");
  try {
    const outdated = await api("GET", button.dataset.outdated);
    for (const p of outdated) {
      const cell = document.querySelector('[data-badge="' + CSS.escape(p.manager + ":" + p.name) + '"]');
      if (cell) { cell.textContent = p.newest + " available"; cell.className = "pill warn"; }
    }
    show(status, "ok", outdated.length ? outdated.length + " update(s) available." : "Every package is at its newest version.");
  } catch (e) {
    show(status, "bad", e.message);
  } finally {
    button.disabled = false;
  }
});

// Live activity: new entries arrive as server-rendered (escaped) HTML
// over Server-Sent Events and go on top of the feed.
const feed = document.querySelector("[data-events]");
if (feed && window.EventSource) {
  const source = new EventSource(feed.dataset.events);
  source.addEventListener("entry", (e) => {
    const holder = document.createElement("div");
    holder.innerHTML = e.data;
    const entry = holder.firstElementChild;
    if (!entry || document.getElementById(entry.id)) return;
    entry.classList.add("new");
    const top = feed.querySelector(".day");
    if (top) top.after(entry); else feed.prepend(entry);
    const empty = document.querySelector("#feed-empty");
    if (empty) empty.remove();
  });
}
