"use strict";
// Confusion drill-down on the live page: the chosen run's test confusion matrix as a table (or, above 30 classes,
// its top confusions as a list); a click on a cell shows that cell's test images, each with its map for the
// predicted class. Plain JS, no libraries; every text through textContent (class names are data), names in <bdi>.
(() => {
  // $, el, bdi, iso and api are app.js's (loaded first, same global scope).
  const url = (run, ...rest) => ["/api/runs", encodeURIComponent(run), "confusion", ...rest].join("/");

  function say(box, text) { box.replaceChildren(el("p", { class: "note" }, text)); }

  // One button per non-empty cell, shaded by its share of the row (blue: correct, red: mistakes).
  function matrixTable(d, run) {
    const names = d.class_names, t = el("table", { class: "confusion" });
    const head = el("tr", {}, el("th", {}, "true \u2193 predicted \u2192"));
    names.forEach((n, j) => head.append(el("th", { title: iso(n) }, String(j))));
    t.append(head);
    d.matrix.forEach((row, i) => {
      const total = row.reduce((a, b) => a + b, 0) || 1, tr = el("tr", {}, el("th", { class: "name" }, i + " \u00b7 ", bdi(names[i])));
      row.forEach((count, j) => {
        const td = el("td");
        td.style.background = "rgba(" + (i === j ? "33,102,172" : "178,24,43") + "," + (0.85 * count / total).toFixed(2) + ")";
        if (count > 0) {
          const b = el("button", { type: "button", class: "cell", "data-i": String(i), "data-j": String(j),
            title: "true " + iso(names[i]) + ", predicted " + iso(names[j]) }, String(count));
          b.addEventListener("click", () => showCell(run, i, j));
          td.append(b);
        } else td.append("0");
        tr.append(td);
      });
      t.append(tr);
    });
    return t;
  }

  function topList(d, run) {
    const names = d.class_names, ul = el("ul", { class: "top-confusions" });
    for (const c of d.top) {
      const b = el("button", { type: "button", class: "cell", "data-i": String(c.i), "data-j": String(c.j) },
        "true ", bdi(names[c.i]), " \u2192 predicted ", bdi(names[c.j]), " (" + c.count + ")");
      b.addEventListener("click", () => showCell(run, c.i, c.j));
      ul.append(el("li", {}, b));
    }
    return ul;
  }

  const WHAT = {
    contributions: "its contributions x \u2299 W[k] for the predicted class k",
    unit: "the pixels x \u2299 W\u2081[j] of the hidden unit that voted most for the predicted class",
    "gradient-x-input": "gradient \u00d7 input for the predicted class (channels summed)",
  };

  async function showCell(run, i, j) {
    const box = $("confusion-cell");
    say(box, "loading\u2026");
    let d;
    try { d = await api(url(run, i, j)); } catch (e) { say(box, "error: " + e.message); return; }
    box.replaceChildren(el("h3", {}, "true ", bdi(d.true), ", predicted ", bdi(d.predicted)));
    const shown = d.images.length;
    box.append(el("p", { class: "note" }, d.count + " test image" + (d.count === 1 ? "" : "s") +
      (shown < d.count ? "; showing " + shown + " of " + d.count + " (the first in the test set's order)" : "") +
      (d.kind ? ". Under each: " + WHAT[d.kind] + ", shared scale \u00b1" + d.scale.toPrecision(2) + "." : ".")));
    const tiles = el("div", { class: "tiles" });
    for (const it of d.images) {
      const f = el("figure", { "data-index": String(it.index) },
        el("img", { src: it.image, alt: "test image " + it.index }),
        el("img", { src: it.map, alt: "map of test image " + it.index }),
        el("figcaption", {}, "#" + it.index + " \u00b7 p = " + (100 * it.p).toFixed(1) + "%" +
          (it.unit === null ? "" : " \u00b7 unit " + it.unit)));
      tiles.append(f);
    }
    box.append(tiles);
  }

  async function showMatrix() {
    const run = $("confusion-run").value, box = $("confusion-matrix");
    $("confusion-cell").replaceChildren();
    say(box, "computing the test predictions\u2026");
    let d;
    try { d = await api(url(run)); } catch (e) { say(box, e.message); return; }
    box.replaceChildren(el("p", { class: "note" }, d.matrix
      ? "Test set, " + d.n + " images. Click a count to see those images (up to " + d.cap + ")."
      : d.class_names.length + " classes are too many for a matrix: the most frequent mistakes of " + d.n +
        " test images. Click one to see its images (up to " + d.cap + ")."));
    box.append(d.matrix ? matrixTable(d, run) : topList(d, run));
  }

  async function init() {
    let listed;
    try { listed = await api("/api/runs"); } catch (e) { return; }
    const select = $("confusion-run");
    for (const r of listed.runs) select.append(el("option", { value: r.name }, iso(r.name)));
    select.addEventListener("change", showMatrix);
    if (listed.runs.length) showMatrix();
  }
  init();
})();
