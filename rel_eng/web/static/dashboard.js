// Live status for the dashboard: poll the JSON API and write text (never markup) into the page.
"use strict";

function setStatus(el, status) {
  el.textContent = status;
  el.className = el.className.replace(/\bstatus-\S+/g, "").trim() + " status-" + status;
}

function cell(text, cls) {
  const td = document.createElement("td");
  td.textContent = text;
  if (cls) td.className = cls;
  return td;
}

function when(iso) { return iso ? iso.slice(0, 19).replace("T", " ") : "-"; }

function renderList(data) {
  const body = document.querySelector("#composes tbody");
  const rows = [];
  for (const r of data.composes) {
    const tr = document.createElement("tr");
    tr.dataset.compose = r.compose_id;
    const link = document.createElement("a");
    link.href = "/composes/" + encodeURIComponent(r.compose_id);
    link.textContent = r.compose_id;
    const first = document.createElement("td");
    first.appendChild(link);
    const p = r.progress;
    tr.append(first, cell(r.release), cell(r.kind + (r.label ? " " + r.label : "")),
              cell(r.status, "status status-" + r.status), cell(p.built + "/" + p.total, "built"),
              cell(String(p.failed), "failed"), cell(p.processed + "/" + p.total, "processed"),
              cell(r.builder), cell(when(r.updated_at), "updated"));
    rows.push(tr);
  }
  body.replaceChildren(...rows);
  const empty = document.getElementById("empty");
  if (empty) empty.hidden = rows.length > 0;
}

function renderCompose(c) {
  setStatus(document.getElementById("status"), c.status);
  const p = c.progress;
  document.getElementById("progress").textContent =
    p.built + "/" + p.total + " built, " + p.processed + "/" + p.total + " processed, " + p.failed + " failed";
  document.getElementById("updated").textContent = when(c.updated_at);
  const reason = document.getElementById("reason");
  reason.hidden = !c.reason;
  reason.querySelector(".reason-text").textContent = c.reason;
  const images = [];
  for (const i of c.images) {
    const steps = i.timeline.length ? i.timeline : [null];
    steps.forEach((t, n) => {
      const tr = document.createElement("tr");
      tr.dataset.image = i.job_key;
      if (t) tr.dataset.step = t.step;
      if (n === 0) {
        const name = document.createElement("td");
        const a = document.createElement("a");
        a.href = "#image-" + i.job_key;
        a.textContent = i.job_key;
        name.appendChild(a);
        if (i.optional) name.append(" (optional)");
        const state = cell(i.state, "state state-" + i.state);
        name.rowSpan = state.rowSpan = steps.length;
        tr.append(name, state);
      }
      tr.append(cell(t ? t.step : "-"), cell(when(t && t.start)), cell(when(t && t.end), "end"),
                cell(t ? t.duration : "", "duration"));
      if (n === 0) {
        const task = document.createElement("td");
        task.rowSpan = steps.length;
        if (i.task_url) {
          const a = document.createElement("a");
          a.className = "task";
          a.href = i.task_url;  // the server passes only http(s) URLs
          a.textContent = i.task;
          task.appendChild(a);
        } else {
          task.textContent = i.task || "-";
        }
        tr.appendChild(task);
      }
      images.push(tr);
    });
  }
  document.querySelector("#images tbody").replaceChildren(...images);
  document.querySelector("#history tbody").replaceChildren(...c.history.map(h => {
    const tr = document.createElement("tr");
    tr.append(cell(when(h.at)), cell(h.status, "status status-" + h.status), cell(h.since_start), cell(h.reason));
    return tr;
  }));
  return p.final;
}

function poll(url, render) {
  const every = parseInt(document.body.dataset.poll, 10) || 2000;
  const tick = async () => {
    let done = false;
    try {
      const res = await fetch(url, {headers: {"Accept": "application/json"}});
      if (res.ok) done = render(await res.json());
    } catch (e) { /* the server restarts or the network blips: try again next tick */ }
    if (!done) setTimeout(tick, every);
  };
  setTimeout(tick, every);
}

document.addEventListener("DOMContentLoaded", () => {
  const page = document.body.dataset.page;
  if (page === "list") {
    poll("/api/composes" + window.location.search, data => { renderList(data); return false; });
  } else if (page === "compose") {
    poll("/api/composes/" + encodeURIComponent(document.body.dataset.compose), renderCompose);
  }
});
