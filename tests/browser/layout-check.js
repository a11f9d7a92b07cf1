// Injected into a copy of report.html by tests/report_browser.rs and run by headless Chromium
// after the page has loaded: lists the elements that reach past the page's width and the pairs
// of text boxes that overlap inside a plot, and the text cut off at a plot's edge, into <pre id="layout-check"> as JSON, which the
// test reads back from Chromium's --dump-dom.
window.addEventListener("load", () => {
  const page = document.documentElement.clientWidth;
  const name = (e) => e.tagName.toLowerCase() + (e.id ? "#" + e.id : "");
  const wide = [];
  for (const e of document.body.querySelectorAll("*")) {
    const r = e.getBoundingClientRect();
    if (r.width > 0 && (r.right > page + 0.5 || r.left < -0.5)) {
      wide.push(`${name(e)} spans ${Math.round(r.left)}..${Math.round(r.right)} px`);
    }
  }
  // Two boxes overlap when they share more than a pixel each way: glyphs that merely touch
  // (a tick label at an axis end) do not count.
  const overlap = (a, b) =>
    Math.min(a.right, b.right) - Math.max(a.left, b.left) > 1 &&
    Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top) > 1;
  const overlaps = [];
  const clipped = [];
  for (const figure of document.querySelectorAll("figure")) {
    const frame = figure.querySelector("svg").getBoundingClientRect();
    for (const t of figure.querySelectorAll("svg text")) {
      const r = t.getBoundingClientRect();
      if (t.textContent.trim() !== "" &&
          (r.left < frame.left - 1 || r.right > frame.right + 1 || r.top < frame.top - 1 || r.bottom > frame.bottom + 1)) {
        clipped.push(`${figure.id}: "${t.textContent.trim()}" reaches past the plot`);
      }
    }
    const texts = [...figure.querySelectorAll("svg text")]
      .filter((t) => t.textContent.trim() !== "")
      .map((t) => [t.textContent.trim(), t.getBoundingClientRect()]);
    for (let i = 0; i < texts.length; i++) {
      for (let j = i + 1; j < texts.length; j++) {
        if (overlap(texts[i][1], texts[j][1])) {
          overlaps.push(`${figure.id}: "${texts[i][0]}" overlaps "${texts[j][0]}"`);
        }
      }
    }
  }
  const out = document.createElement("pre");
  out.id = "layout-check";
  out.textContent = JSON.stringify({ page, wide, overlaps, clipped, figures: document.querySelectorAll("figure").length });
  document.body.appendChild(out);
});
