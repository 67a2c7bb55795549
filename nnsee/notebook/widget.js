// nnsee Explorer: the notebook widget's view (an anywidget ES module; plain JS, no libraries, nothing fetched).
// The kernel computes; this module draws what the traitlets hold. All text goes through textContent or
// append(string) (class and run names are data), each name inside a <bdi> so a right-to-left override inside it
// cannot reorder the text around it.
const THROTTLE_MS = 150, MAX_SIDE = 1024, SIDE = 280, ANSWER_WAIT_MS = 20000;

// el(tag, attrs, ...parts): parts are strings (text) or nodes.
function el(tag, attrs = {}, ...parts) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  for (const p of parts) if (p !== undefined && p !== null) e.append(p instanceof Node ? p : String(p));
  return e;
}
const bdi = (name) => el("bdi", {}, name);
const pct = (p) => (100 * p).toFixed(1) + "%";

// One row of a bar chart: a name, a bar of `fraction` of the track, a figure; `top` marks it.
function barRow(name, fraction, text, top) {
  const fill = el("span", { class: "nnsee-fill" });
  fill.style.width = (100 * Math.min(1, Math.max(0, fraction))).toFixed(1) + "%";
  const row = el("div", { class: "nnsee-bar" + (top ? " nnsee-top" : "") });
  row.append(el("span", { class: "nnsee-name" }, bdi(name)), el("span", { class: "nnsee-track" }, fill),
    el("span", {}, text));
  return row;
}

function figure(src, ...caption) {
  const cap = el("figcaption", {}, ...caption);
  const img = el("img", { alt: cap.textContent });
  img.src = src;  // data: URIs made by the kernel
  return el("figure", {}, img, cap);
}

function pane(d, pickUnit) {
  const box = el("div", { class: "nnsee-pane", "data-run": d.run });
  box.append(el("h4", {}, bdi(d.run), " (" + d.kind + ")"));
  if (d.blank) {
    box.append(el("p", { class: "nnsee-prediction nnsee-blank" }, "blank: draw something"));
    return box;
  }
  box.append(el("p", { class: "nnsee-prediction" }, "predicted: ", bdi(d.label)));
  box.append(figure(d.input, "what the model sees"));
  const bars = el("div", { class: "nnsee-bars nnsee-probabilities" });
  d.class_names.forEach((n, k) => bars.append(barRow(n, d.probabilities[k], pct(d.probabilities[k]), k === d.predicted)));
  box.append(bars);
  if (d.maps && d.maps.length) {
    const tiles = el("div", { class: "nnsee-tiles nnsee-maps" });
    for (const m of d.maps) tiles.append(figure(m.src, m.label + " " + m.value.toFixed(2)));
    box.append(el("h5", {}, d.maps[0].label.endsWith("x ⊙ W") ? "why this score: x ⊙ W per class" : "maps"), tiles);
  }
  if (d.units) {
    const tiles = el("div", { class: "nnsee-tiles nnsee-units" });
    for (const u of d.units) {
      const b = el("button", { class: "nnsee-unit", type: "button", "data-unit": u.unit },
        figure(u.src, "unit " + u.unit + " h=" + u.activation.toFixed(2) + " vote " + u.vote.toFixed(2)));
      b.addEventListener("click", () => pickUnit(d.run, u.unit));
      tiles.append(b);
    }
    box.append(el("h5", {}, "hidden units that voted most for ", bdi(d.label), " (click for the card)"), tiles);
  }
  return box;
}

function card(d) {
  const box = el("div", { class: "nnsee-card" });
  box.append(el("h4", {}, bdi(d.run), ": unit " + d.unit));
  box.append(figure(d.incoming, "incoming weights (±" + d.incoming_scale.toPrecision(2) + ")"));
  box.append(el("p", {}, "bias " + d.bias.toFixed(3) + "; promotes ", bdi(d.promotes), ", suppresses ",
    bdi(d.suppresses)));
  const m = Math.max(...d.outgoing.map(Math.abs)) || 1;
  const bars = el("div", { class: "nnsee-bars nnsee-outgoing" });
  d.class_names.forEach((n, k) => bars.append(barRow(n, Math.abs(d.outgoing[k]) / m, d.outgoing[k].toFixed(2),
    d.outgoing[k] >= 0)));
  box.append(el("h5", {}, "outgoing weights to every class"), bars);
  return box;
}

function sameBytes(a, b) {
  if (!a || !b || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

// An upload as it is sent: decoded by the browser and scaled to at most MAX_SIDE px on its long side, as PNG; a file
// the browser cannot decode goes as it is (the kernel decodes it or says why, in one line).
async function prepare(file) {
  let bitmap;
  try { bitmap = await createImageBitmap(file); } catch (_) { return file; }
  try {
    const scale = Math.min(1, MAX_SIDE / Math.max(bitmap.width, bitmap.height));
    const c = el("canvas");
    c.width = Math.max(1, Math.round(bitmap.width * scale)); c.height = Math.max(1, Math.round(bitmap.height * scale));
    c.getContext("2d").drawImage(bitmap, 0, 0, c.width, c.height);
    return await new Promise((done) => c.toBlob(done, "image/png")) || file;
  } finally { bitmap.close(); }
}

function render({ model, el: root }) {
  root.classList.add("nnsee-explorer");
  const pad = el("canvas", { class: "nnsee-pad", width: SIDE, height: SIDE, "aria-label": "drawing canvas" });
  const ctx = pad.getContext("2d");
  const view = el("select", { class: "nnsee-view", "aria-label": "method" });
  const upload = el("input", { class: "nnsee-upload", type: "file", accept: "image/*" });
  const clear = el("button", { class: "nnsee-clear", type: "button" }, "Clear");
  const status = el("p", { class: "nnsee-status", role: "status" });
  const error = el("p", { class: "nnsee-error", role: "alert" });
  const panes = el("div", { class: "nnsee-panes" });
  const cardBox = el("div", { class: "nnsee-card-box" });
  const input = el("div", { class: "nnsee-input" }, pad,
    el("div", { class: "nnsee-buttons" }, clear, el("label", {}, "Upload ", upload)),
    el("label", {}, "Method ", view), status, error);
  root.replaceChildren(el("div", { class: "nnsee-main" }, input, panes), cardBox);

  const blank = () => { ctx.fillStyle = "#000"; ctx.fillRect(0, 0, SIDE, SIDE); };
  blank();

  // The answer to each send arrives as a new `done`; until then strokes only mark that another send is due.
  let pending = false, again = false, lastSent = 0, lastBytes = null, waitTimer = null;
  const finish = () => {
    clearTimeout(waitTimer); pending = false; status.textContent = "";
    if (again) { again = false; schedule(false); }
  };
  async function send(blob) {
    lastSent = Date.now();
    const bytes = new Uint8Array(await blob.arrayBuffer());
    if (sameBytes(bytes, lastBytes)) { finish(); return; }
    lastBytes = bytes; status.textContent = "computing…";
    model.set("image", new DataView(bytes.buffer)); model.save_changes();
    waitTimer = setTimeout(finish, ANSWER_WAIT_MS);  // a kernel that never answers must not freeze the canvas
  }
  function schedule(now) {
    if (pending) { again = true; return; }
    pending = true;
    const wait = now ? 0 : Math.max(0, THROTTLE_MS - (Date.now() - lastSent));
    setTimeout(() => pad.toBlob((blob) => (blob ? send(blob) : finish()), "image/png"), wait);
  }

  // Drawing: pointer events cover mouse, pen and touch. White strokes on black, like MNIST.
  let drawing = false, last = null;
  const at = (ev) => {
    const r = pad.getBoundingClientRect();
    return [(ev.clientX - r.left) * SIDE / r.width, (ev.clientY - r.top) * SIDE / r.height];
  };
  const stroke = (ev) => {
    const p = at(ev);
    ctx.strokeStyle = "#fff"; ctx.lineWidth = 22; ctx.lineCap = "round"; ctx.lineJoin = "round";
    ctx.beginPath(); ctx.moveTo(last[0], last[1]); ctx.lineTo(p[0], p[1]); ctx.stroke();
    last = p; schedule(false);
  };
  pad.addEventListener("pointerdown", (ev) => {
    drawing = true; last = at(ev); pad.setPointerCapture(ev.pointerId); stroke(ev);
  });
  pad.addEventListener("pointermove", (ev) => { if (drawing) stroke(ev); });
  for (const t of ["pointerup", "pointercancel"]) pad.addEventListener(t, () => {
    if (drawing) { drawing = false; schedule(true); }
  });
  clear.addEventListener("click", () => {
    blank(); lastBytes = null;  // the kernel clears the panes; the same unit clicked again shows its card again
    model.set("image", new DataView(new ArrayBuffer(0))); model.set("unit", {}); model.set("card", {});
    model.save_changes();
  });
  upload.addEventListener("change", async () => {
    const f = upload.files[0]; if (!f) return;
    pending = true; status.textContent = "preparing the image…";
    try { send(await prepare(f)); } catch (e) { status.textContent = ""; error.textContent = "error: " + e.message; finish(); }
  });
  view.addEventListener("change", () => { model.set("view", view.value); model.save_changes(); });

  const pickUnit = (run, unit) => { model.set("unit", { run, unit }); model.save_changes(); };
  const showViews = () => {
    view.replaceChildren(el("option", { value: "" }, "(default)"));
    for (const v of model.get("views")) view.append(el("option", { value: v }, v));
    view.value = model.get("view");
  };
  const showResults = () => panes.replaceChildren(...model.get("results").map((d) => pane(d, pickUnit)));
  const showCard = () => {
    const d = model.get("card");
    cardBox.replaceChildren(...(d && d.outgoing ? [card(d)] : []));
  };
  const showError = () => { error.textContent = model.get("error") ? "error: " + model.get("error") : ""; };
  const handlers = [["change:views", showViews], ["change:view", showViews], ["change:results", showResults],
    ["change:card", showCard], ["change:error", showError], ["change:done", finish]];
  for (const [ev, fn] of handlers) model.on(ev, fn);
  showViews(); showResults(); showCard(); showError();
  return () => { for (const [ev, fn] of handlers) model.off(ev, fn); clearTimeout(waitTimer); };
}

export default { render };
