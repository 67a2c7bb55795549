"use strict";
// Representation map on the live page: the chosen run's sampled test images at its last Linear layer's input,
// projected (PCA at each weight snapshot, aligned to the final weights; or t-SNE of the final weights), one dot per
// image coloured by class; hovering a dot shows its image (a tile of the answer's sprite) and class. A slider walks
// the snapshots. Each drawn or uploaded image (app.js's "nnsee:explained") gets its nearest training images.
// Plain JS, no libraries; every text through textContent (class names are data), names in <bdi>.
(() => {
  // $, el, bdi, iso and api are app.js's (loaded first, same global scope).
  const SVG = "http://www.w3.org/2000/svg", SIDE = 440, PAD = 10, THUMB = 112;
  const COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf"];
  let shown = null, sprite = null, toPixels = null;

  function svg(tag, attrs) {
    const e = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
    return e;
  }
  function say(text) { $("rep-note").textContent = text; }

  // One scale for every frame (they are aligned to the final one), y upwards.
  function scaler(frames) {
    let lo = [Infinity, Infinity], hi = [-Infinity, -Infinity];
    for (const f of frames) for (const [x, y] of f) {
      lo = [Math.min(lo[0], x), Math.min(lo[1], y)]; hi = [Math.max(hi[0], x), Math.max(hi[1], y)];
    }
    const span = Math.max(hi[0] - lo[0], hi[1] - lo[1], 1e-12), mid = [(lo[0] + hi[0]) / 2, (lo[1] + hi[1]) / 2];
    const k = (SIDE - 2 * PAD) / span;
    return ([x, y]) => [SIDE / 2 + (x - mid[0]) * k, SIDE / 2 - (y - mid[1]) * k];
  }

  function frameLabel(d, f) {
    const epoch = d.epochs[f], ex = d.explained[f];
    return (epoch === null ? "final weights" : "epoch " + epoch) +
      (ex ? " \u00b7 PC1 " + (100 * ex[0]).toFixed(1) + "%, PC2 " + (100 * ex[1]).toFixed(1) + "% of the variance" : "");
  }

  function showFrame(f) {
    if (!shown) return;
    const points = shown.frames[f];
    $("rep-map").querySelectorAll("circle").forEach((c, i) => {
      const [x, y] = toPixels(points[i]);
      c.setAttribute("cx", x.toFixed(1)); c.setAttribute("cy", y.toFixed(1));
    });
    $("rep-epoch").textContent = frameLabel(shown, f);
  }

  function hover(i) {
    const d = shown, c = $("rep-thumb"), ctx = c.getContext("2d");
    const [h, w] = d.tile, col = i % d.columns, row = Math.floor(i / d.columns);
    ctx.imageSmoothingEnabled = false;
    ctx.clearRect(0, 0, c.width, c.height);
    if (sprite && sprite.complete) ctx.drawImage(sprite, col * w, row * h, w, h, 0, 0, THUMB, THUMB);
    c.hidden = false;
    $("rep-label").replaceChildren("test image #" + d.index[i] + ": ", bdi(d.class_names[d.labels[i]]));
  }

  function draw(d) {
    shown = d;
    toPixels = scaler(d.frames);
    sprite = new Image();
    if (d.sprite) sprite.src = d.sprite;
    const map = $("rep-map");
    map.replaceChildren(svg("rect", { x: 0.5, y: 0.5, width: SIDE - 1, height: SIDE - 1, fill: "none", stroke: "#ccc" }));
    d.labels.forEach((k, i) => {
      const c = svg("circle", { r: 3, fill: COLOURS[k % COLOURS.length], "data-i": i });
      map.append(c);
    });
    const slider = $("rep-frame");
    slider.max = String(d.frames.length - 1);
    slider.value = slider.max;
    slider.disabled = d.frames.length < 2;
    showFrame(d.frames.length - 1);
    const legend = $("rep-legend");
    legend.replaceChildren();
    d.class_names.slice(0, 30).forEach((n, k) => {
      const sw = el("span", { class: "swatch" });
      sw.style.background = COLOURS[k % COLOURS.length];
      legend.append(el("span", { class: "legend-item" }, sw, bdi(n)));
    });
    say(d.n + " of " + d.n_test + " test images (an equal share per class), features: the input of layer " +
      iso(d.layer) + "; " + (d.method === "pca" ? "PCA, each snapshot aligned to the final weights"
        : "t-SNE of the final weights") + ". Hover a dot to see its image." +
      (d.class_names.length > COLOURS.length ? " Colours repeat every " + COLOURS.length + " classes." : ""));
  }

  async function load() {
    const run = $("rep-run").value, method = $("rep-method").value;
    if (!run) return;
    shown = null;
    $("rep-map").replaceChildren();
    say(method === "tsne" ? "computing t-SNE (this takes a while the first time)\u2026" : "computing the map\u2026");
    let d;
    try {
      d = await api("/api/runs/" + encodeURIComponent(run) + "/representation?method=" + method);
    } catch (e) { say(e.message); return; }
    if (run === $("rep-run").value && method === $("rep-method").value) draw(d);
  }

  async function neighbours(blob) {
    const run = $("rep-run").value, box = $("rep-neighbours");
    if (!run || !blob) return;
    let d;
    try {
      d = await api("/api/neighbours?run=" + encodeURIComponent(run),
        { method: "POST", headers: { "Content-Type": blob.type || "application/octet-stream" }, body: blob });
    } catch (e) { box.replaceChildren(el("p", { class: "note" }, e.message)); return; }
    if (d.blank) { box.replaceChildren(el("p", { class: "note" }, "the image is blank")); return; }
    box.replaceChildren(el("p", { class: "note" }, "Nearest of " + d.searched +
      " training images by Euclidean distance between their features (layer " + iso(shown ? shown.layer : "?") + ")"));
    const tiles = el("div", { class: "tiles" });
    for (const n of d.neighbours) {
      tiles.append(el("figure", { "data-index": String(n.index) },
        el("img", { src: n.image, alt: "training image " + n.index }),
        el("figcaption", {}, bdi(n.label), " \u00b7 d = " + n.distance.toPrecision(3))));
    }
    box.append(tiles);
  }

  async function init() {
    let listed;
    try { listed = await api("/api/runs"); } catch (e) { return; }
    const select = $("rep-run");
    for (const r of listed.runs) select.append(el("option", { value: r.name }, iso(r.name)));
    select.addEventListener("change", load);
    $("rep-method").addEventListener("change", load);
    $("rep-frame").addEventListener("input", (ev) => showFrame(Number(ev.target.value)));
    $("rep-map").addEventListener("mouseover", (ev) => {
      const i = ev.target.getAttribute && ev.target.getAttribute("data-i");
      if (i !== null && shown) hover(Number(i));
    });
    document.addEventListener("nnsee:explained", (e) => neighbours(e.detail.blob));
    if (listed.runs.length) load();
  }
  init();
})();
