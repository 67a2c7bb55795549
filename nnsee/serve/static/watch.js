// nnsee serve --watch RUN: poll GET /api/watch?since=VERSION every second and redraw what changed.
// Text goes in through textContent only (class names are the data's); images are data: URIs from the server.
"use strict";

const POLL_MS = 1000;
const $ = (id) => document.getElementById(id);
let version = -1;
$("watch").style.display = "none";  // (the page's CSS makes main a flex box, which the hidden attribute loses to)

function el(tag, attrs = {}, ...parts) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  for (const p of parts) if (p !== undefined) e.append(p instanceof Node ? p : String(p));
  return e;
}

function show(s) {
  $("folder").textContent = s.folder;
  const planned = s.planned ? " of " + s.planned : "";
  $("epoch").textContent = s.epoch === null || s.epoch === undefined ? "epoch –" : "epoch " + s.epoch + planned;
  document.body.dataset.epoch = s.epoch === null || s.epoch === undefined ? "" : String(s.epoch);
  document.body.dataset.version = String(s.version);
  $("watch-status").textContent = s.note || (s.status === "waiting" ? "waiting for the run" : "");
  if (!s.changed || s.status !== "ready") return;
  $("watch").style.display = "";  // the views appear with the first epoch read
  $("loss").src = s.curves.loss;
  $("accuracy").src = s.curves.accuracy;
  document.body.dataset.points = String((s.history.epoch || []).length);
  const t = s.templates;
  $("watch-templates").hidden = !t;
  if (t) {
    $("templates-title").textContent = t.effective ? "Effective class templates" : "Class templates";
    $("templates-note").textContent = "shared scale ±" + t.scale.toPrecision(3) + " (red +, blue −)";
    $("templates").replaceChildren(...t.templates.map((x) =>
      el("figure", {}, el("img", {src: x.src, alt: "template of " + x.label}), el("figcaption", {}, x.label))));
  }
  const u = s.units;
  $("watch-units").hidden = !u;
  if (u) {
    $("units-note").textContent = u.what + ", shared scale ±" + u.scale.toPrecision(3);
    $("units").src = u.src;
  }
}

async function poll() {
  try {
    const r = await fetch("/api/watch?since=" + version);
    if (r.ok) {
      const s = await r.json();
      show(s);
      version = s.version;
    } else {
      $("watch-status").textContent = "the server answered " + r.status + "; retrying";
    }
  } catch (e) {
    $("watch-status").textContent = "the server cannot be reached; retrying";
  }
  setTimeout(poll, POLL_MS);
}
poll();
