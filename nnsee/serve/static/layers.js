"use strict";
// Layer by layer on the live page: each drawn or uploaded image (app.js's "nnsee:explained") is posted to
// /api/layers for the first run it was explained with; the answer (every layer's output in forward order as a PNG
// data: URI with its name, type and shape, then the logits and probabilities as SVG data: URIs) fills
// #layers-view. Plain JS, no libraries; every text through textContent (class and layer names are data).
(() => {
  // $, el, bdi and api are app.js's (loaded first, same global scope).
  let latest = 0;

  function layerTile(layer) {
    const parts = [el("img", { src: layer.uri, alt: layer.name + " output" }),
      el("figcaption", {}, el("code", {}, layer.name), el("br"), layer.kind + " · " + layer.shape)];
    if (layer.note) parts.push(el("div", { class: "note" }, layer.note));
    return el("figure", { class: "layer" }, ...parts);
  }

  function show(answer) {
    const box = $("layers-out");
    box.replaceChildren();
    if (answer.blank) { box.append(el("p", { class: "note" }, "the image is blank: draw or upload one")); return; }
    const name = answer.class_names[answer.predicted];
    box.append(el("p", {}, "run ", bdi(answer.run), ": predicted ", el("b", {}, bdi(name)),
      " (p = " + answer.probability.toFixed(3) + "), " + answer.n_layers + " layers"));
    if (answer.layers.length < answer.n_layers) {
      box.append(el("p", { class: "note" }, "showing " + answer.layers.length + " of " + answer.n_layers +
        " layers, evenly spread"));
    }
    const row = el("div", { class: "layer-row" },
      el("figure", { class: "layer" }, el("img", { src: answer.input, alt: "input" }),
        el("figcaption", {}, "input " + answer.input_shape.join(" × "))));
    for (const layer of answer.layers) row.append(layerTile(layer));
    box.append(row);
    box.append(el("div", { class: "layer-row" },
      el("img", { src: answer.logits_svg, alt: "logits", class: "chart" }),
      el("img", { src: answer.probabilities_svg, alt: "probabilities", class: "chart" })));
  }

  document.addEventListener("nnsee:explained", async (e) => {
    const { blob, runs } = e.detail;
    if (!runs || !runs.length) return;
    const ticket = ++latest;
    $("layers-status").textContent = "computing…";
    try {
      const answer = await api("/api/layers?run=" + encodeURIComponent(runs[0]),
        { method: "POST", headers: { "Content-Type": blob.type || "application/octet-stream" }, body: blob });
      if (ticket !== latest) return;  // a newer image is on its way
      $("layers-status").textContent = "";
      show(answer);
    } catch (err) {
      if (ticket === latest) $("layers-status").textContent = "error: " + err.message;
    }
  });
})();
