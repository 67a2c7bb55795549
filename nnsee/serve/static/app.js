"use strict";
// nnsee live page: plain JS, no libraries. All text goes through textContent (class and run names are data), and
// each name sits in a <bdi> (or between FSI and PDI in attributes and options): a right-to-left override inside a
// name cannot reorder the text around it.
const $ = (id) => document.getElementById(id);
const pad = $("pad"), ctx = pad.getContext("2d");
let runs = [], maxBody = 2 * 1024 * 1024, pending = false, again = false, lastSent = 0;
const THROTTLE_MS = 150, MAX_SIDE = 1024;
const SENT_AS_IS = ["image/png", "image/jpeg", "image/webp", "image/bmp"];

// el(tag, attrs, ...parts): parts are strings (text) or nodes.
function el(tag, attrs = {}, ...parts) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  for (const p of parts) if (p !== undefined) e.append(p instanceof Node ? p : String(p));
  return e;
}
const bdi = (name) => el("bdi", {}, name);
const iso = (name) => "\u2068" + name + "\u2069";  // FIRST STRONG ISOLATE ... POP DIRECTIONAL ISOLATE

// Every request of the page: its JSON, or an Error whose message the page can show as it is (a 503 is "busy",
// a refusal's message is the server's, an answer that is not JSON says so).
async function api(url, options) {
  let r;
  try { r = await fetch(url, options); } catch (e) { throw new Error("the server cannot be reached (" + e.message + ")"); }
  if (r.status === 503) throw new Error("busy, retry in a moment (the server is working on other requests)");
  let data = null;
  try { data = await r.json(); } catch (_) { data = null; }
  if (!r.ok) {
    const why = data && (data.detail || data.error);
    const text = Array.isArray(why) ? why.map((d) => d.msg || JSON.stringify(d)).join("; ") : why;
    if (r.status === 413) throw new Error("the image is too large to send: " + (text || "over the limit"));
    throw new Error(text || r.status + " " + r.statusText);
  }
  if (data === null) throw new Error("the server's answer was not JSON (" + r.status + ")");
  return data;
}

function clearPad() {
  ctx.fillStyle = "#000"; ctx.fillRect(0, 0, pad.width, pad.height);
}

// Drawing: pointer events cover mouse, pen and touch. White strokes on black, like MNIST.
let drawing = false, last = null;
function pos(ev) {
  const r = pad.getBoundingClientRect();
  return [(ev.clientX - r.left) * pad.width / r.width, (ev.clientY - r.top) * pad.height / r.height];
}
pad.addEventListener("pointerdown", (ev) => {
  drawing = true; last = pos(ev); pad.setPointerCapture(ev.pointerId); stroke(ev);
});
pad.addEventListener("pointermove", (ev) => { if (drawing) stroke(ev); });
for (const t of ["pointerup", "pointercancel"]) pad.addEventListener(t, () => { drawing = false; schedule(true); });
function stroke(ev) {
  const p = pos(ev);
  ctx.strokeStyle = "#fff"; ctx.lineWidth = 22 * (ev.pressure > 0 && ev.pointerType === "pen" ? 0.5 + ev.pressure : 1);
  ctx.lineCap = "round"; ctx.lineJoin = "round";
  ctx.beginPath(); ctx.moveTo(last[0], last[1]); ctx.lineTo(p[0], p[1]); ctx.stroke();
  last = p; schedule(false);
}

function schedule(now) {
  if (pending) { again = true; return; }
  const wait = now ? 0 : Math.max(0, THROTTLE_MS - (Date.now() - lastSent));
  pending = true;
  setTimeout(() => pad.toBlob((blob) => send(blob), "image/png"), wait);
}

// The view list is the method registry as the server reads it: views a run cannot show fall back to its default.
function viewFor(runName) {
  const v = $("view").value, r = runs.find((x) => x.name === runName);
  return v && r && r.views.includes(v) ? "&view=" + encodeURIComponent(v) : "";
}

function fillViews() {
  const keep = $("view").value, names = new Set();
  for (const n of [$("run").value, $("compare").value]) {
    const r = runs.find((x) => x.name === n); if (r) r.views.forEach((v) => names.add(v));
  }
  $("view").replaceChildren(el("option", { value: "" }, "(default)"));
  for (const v of names) $("view").append(el("option", { value: v }, v));
  $("view").value = names.has(keep) ? keep : "";
}

function post(runName, blob) {
  return api("/api/explain?run=" + encodeURIComponent(runName) + viewFor(runName),
    { method: "POST", headers: { "Content-Type": blob.type || "application/octet-stream" }, body: blob });
}

// An uploaded file as the page sends it: decoded by the browser (EXIF orientation applied) and scaled to at most
// MAX_SIDE px on its long side, as PNG, halving again while over the server's body limit; a small file of a common
// type as it is; a file the browser cannot decode as it is too (the server decodes it or says why).
async function prepare(file) {
  $("upload-note").textContent = "";
  let bitmap;
  try { bitmap = await createImageBitmap(file); } catch (_) { return file; }
  try {
    const side = Math.max(bitmap.width, bitmap.height);
    if (side <= MAX_SIDE && file.size <= maxBody && SENT_AS_IS.includes(file.type)) return file;
    let scale = Math.min(1, MAX_SIDE / side);
    for (;;) {
      const c = el("canvas");
      c.width = Math.max(1, Math.round(bitmap.width * scale)); c.height = Math.max(1, Math.round(bitmap.height * scale));
      const g = c.getContext("2d"); g.imageSmoothingQuality = "high";
      g.drawImage(bitmap, 0, 0, c.width, c.height);
      const blob = await new Promise((done) => c.toBlob(done, "image/png"));
      if (!blob) throw new Error("the browser could not re-encode this image");
      if (blob.size <= maxBody || Math.max(c.width, c.height) <= 64) {
        $("upload-note").textContent = "scaled from " + bitmap.width + "×" + bitmap.height + " to " + c.width + "×" +
          c.height + " to send";
        return blob;
      }
      scale /= 2;
    }
  } finally { bitmap.close(); }
}

let lastBlob = null;
async function send(blob) {
  lastSent = Date.now(); lastBlob = blob;
  const names = [$("run").value, $("compare").value].filter((n, i, a) => n && a.indexOf(n) === i);
  try {
    const results = await Promise.all(names.map((n) => post(n, blob)));
    $("status").textContent = "";
    showPanes(results);
    // For the page's other views (their own scripts): the image just explained, the runs it was sent to, the answers.
    document.dispatchEvent(new CustomEvent("nnsee:explained", { detail: { blob, runs: names, results } }));
  } catch (e) {
    $("status").textContent = "error: " + e.message;
  } finally {
    pending = false;
    if (again) { again = false; schedule(false); }
  }
}

function bars(names, probs, top) {
  const box = el("div", { class: "bars" });
  names.forEach((n, k) => {
    const row = el("div", { class: "bar" + (k === top ? " top" : "") });
    row.append(el("span", { title: iso(n) }, bdi(n)));
    const track = el("span"); const fill = el("span", { class: "fill" });
    fill.style.display = "block"; fill.style.width = (100 * probs[k]).toFixed(1) + "%";
    track.append(fill); row.append(track, el("span", {}, (100 * probs[k]).toFixed(1) + "%"));
    box.append(row);
  });
  return box;
}

// figure(src, ...caption): the caption's parts as for el (a class name as bdi(name)).
function figure(src, ...caption) {
  const cap = el("figcaption", {}, ...caption);
  const f = el("figure"); const img = el("img", { alt: cap.textContent }); img.src = src;
  f.append(img, cap); return f;
}

function showPanes(results) {
  const panes = $("panes"); panes.replaceChildren();
  for (const d of results) {
    const pane = el("div", { class: "pane", "data-run": d.run });
    pane.append(el("h2", {}, bdi(d.run), " (" + d.kind + ")"));
    if (d.blank) { pane.append(el("p", { class: "prediction blank" }, "blank: draw something")); panes.append(pane); continue; }
    pane.append(el("p", { class: "prediction" }, "predicted: ", bdi(d.label)));
    pane.append(figure(d.input, "what the model sees"));
    pane.append(bars(d.class_names, d.probabilities, d.predicted));
    if (d.maps && d.maps.length) {
      pane.append(el("h3", {}, d.units || d.maps[0].label.endsWith("x ⊙ W") ? "why this score: x ⊙ W per class"
        : "attribution maps"));
      const t = el("div", { class: "tiles maps" });
      for (const m of d.maps) t.append(figure(m.src, m.label + " " + m.value.toFixed(2)));
      pane.append(t);
    }
    if (d.units) {
      pane.append(el("h3", {}, "hidden units that voted most for ", bdi(d.label), " (click for the card)"));
      const t = el("div", { class: "tiles units" });
      for (const u of d.units) {
        const b = el("button", { class: "unit", type: "button", "data-unit": u.unit });
        b.append(figure(u.src, "unit " + u.unit + " h=" + u.activation.toFixed(2) + " vote " + u.vote.toFixed(2)));
        b.addEventListener("click", () => showCard(d.run, u.unit));
        t.append(b);
      }
      pane.append(t);
    }
    panes.append(pane);
  }
}

async function showCard(runName, j) {
  const card = $("card");
  let d;
  try { d = await api("/api/runs/" + encodeURIComponent(runName) + "/units/" + j); } catch (e) {
    card.replaceChildren(el("p", { class: "error" }, "error: " + e.message)); card.hidden = false; return;
  }
  card.replaceChildren();
  card.append(el("h2", {}, bdi(d.run), ": unit " + d.unit));
  card.append(figure(d.incoming, "incoming weights (±" + d.incoming_scale.toPrecision(2) + ")"));
  card.append(el("p", {}, "bias " + d.bias.toFixed(3) + "; promotes ", bdi(d.promotes), ", suppresses ",
    bdi(d.suppresses)));
  const box = el("div", { class: "bars outgoing" });
  const m = Math.max(...d.outgoing.map(Math.abs)) || 1;
  d.class_names.forEach((n, k) => {
    const row = el("div", { class: "bar" + (d.outgoing[k] >= 0 ? " top" : "") });
    const fill = el("span", { class: "fill" }); fill.style.display = "block";
    fill.style.width = (100 * Math.abs(d.outgoing[k]) / m).toFixed(1) + "%";
    const track = el("span"); track.append(fill);
    row.append(el("span", { title: iso(n) }, bdi(n)), track, el("span", {}, d.outgoing[k].toFixed(2)));
    box.append(row);
  });
  card.append(el("h3", {}, "outgoing weights to every class"), box);
  card.hidden = false;
  card.scrollIntoView({ block: "nearest" });
}

async function showTemplates() {
  const name = $("template-run").value, box = $("templates"); box.replaceChildren();
  let d;
  try { d = await api("/api/runs/" + encodeURIComponent(name) + "/templates"); } catch (e) {
    box.append(el("p", { class: "note" }, e.message)); return;
  }
  for (const t of d.templates) box.append(figure(t.src, bdi(t.label)));
}

async function init() {
  clearPad();
  const listed = await api("/api/runs");
  runs = listed.runs; maxBody = listed.max_body || maxBody;
  for (const r of runs) {
    $("run").append(el("option", { value: r.name }, iso(r.name) + " (" + r.kind + ")"));
    $("compare").append(el("option", { value: r.name }, iso(r.name) + " (" + r.kind + ")"));
    $("template-run").append(el("option", { value: r.name }, iso(r.name)));
  }
  $("clear").addEventListener("click", () => { clearPad(); $("panes").replaceChildren(); });
  fillViews();
  $("run").addEventListener("change", () => { fillViews(); if (lastBlob) send(lastBlob); });
  $("compare").addEventListener("change", () => { fillViews(); if (lastBlob) send(lastBlob); });
  $("view").addEventListener("change", () => lastBlob && send(lastBlob));
  $("template-run").addEventListener("change", showTemplates);
  const withUnits = runs.filter((r) => r.n_units > 0);
  for (const r of withUnits) $("unit-run").append(el("option", { value: r.name }, iso(r.name)));
  $("units-view").hidden = withUnits.length === 0;
  const browse = (step) => {
    const r = withUnits.find((x) => x.name === $("unit-run").value); if (!r) return;
    const j = Math.min(Math.max(0, (parseInt($("unit-number").value, 10) || 0) + step), r.n_units - 1);
    $("unit-number").value = j; $("unit-number").max = r.n_units - 1;
    $("unit-count").textContent = r.n_units + " hidden units";
    showCard(r.name, j);
  };
  $("unit-prev").addEventListener("click", () => browse(-1));
  $("unit-next").addEventListener("click", () => browse(1));
  $("unit-number").addEventListener("change", () => browse(0));
  $("unit-run").addEventListener("change", () => { $("unit-number").value = 0; browse(0); });
  $("upload").addEventListener("change", async (ev) => {
    const f = ev.target.files[0]; if (!f) return;
    pending = true; $("status").textContent = "preparing the image…";
    try { send(await prepare(f)); } catch (e) { pending = false; $("status").textContent = "error: " + e.message; }
  });
  showTemplates();
}
init().catch((e) => { $("status").textContent = "error: " + e.message; });
