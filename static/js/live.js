/* Live metrics in the browser (run page and canvas). The server sends HTML fragments over a
 * websocket (htmx-ext-ws) and htmx swaps them out of band by element id; this module adds only:
 *   - the `cf-live` htmx extension: drops fragments whose target is not on this page (a node the
 *     canvas no longer has), so a swap never fails;
 *   - the connection note (live / reconnecting; htmx-ext-ws reconnects and the server resends its
 *     snapshot, so nothing is lost);
 *   - throughput sparklines (uPlot) on the run page, fed from each stats fragment's data-t/data-rate.
 * The canvas's badges and edge counts belong to canvas.js.
 */
(function () {
  "use strict";

  htmx.defineExtension("cf-live", {
    transformResponse: function (text) {
      const template = document.createElement("template");
      template.innerHTML = text;
      let dropped = false;
      Array.from(template.content.children).forEach((child) => {
        if (!child.id || !document.getElementById(child.id)) { child.remove(); dropped = true; }
      });
      return dropped ? template.innerHTML : text;
    },
  });

  function note(text, kind) {
    const el = document.getElementById("live-conn");
    if (!el) return;
    el.textContent = text;
    el.dataset.state = kind;
  }
  document.body.addEventListener("htmx:wsOpen", () => note(pgettext("live socket state", "live"), "open"));
  document.body.addEventListener("htmx:wsClose", () => note(pgettext("live socket state", "reconnecting…"), "closed"));

  // ------------------------------------------------------------ sparklines (run page)

  const WINDOW_POINTS = 120;
  const series = {}; // node dom id -> { xs, ys, plot }

  function sparkline(stats) {
    if (!window.uPlot) return;
    const key = stats.dataset.node;
    const box = document.getElementById("spark-" + stats.dataset.run + "-" + key);
    if (!box) return;
    const t = Number(stats.dataset.t);
    const rate = Number(stats.dataset.rate);
    const s = series[key] || (series[key] = { xs: [], ys: [], plot: null });
    if (s.xs.length && t <= s.xs[s.xs.length - 1]) return; // a snapshot resent after a reconnect
    s.xs.push(t);
    s.ys.push(rate);
    if (s.xs.length > WINDOW_POINTS) { s.xs.shift(); s.ys.shift(); }
    if (!s.plot) {
      s.plot = new uPlot({
        width: box.clientWidth || 220, height: 44, legend: { show: false }, cursor: { show: false },
        scales: { x: { time: false } }, axes: [{ show: false }, { show: false }],
        series: [{}, { stroke: "#2f6fdb", fill: "rgba(47,111,219,0.12)", width: 1.5 }],
      }, [s.xs, s.ys], box);
    } else {
      s.plot.setData([s.xs, s.ys]);
    }
    box.dataset.points = String(s.xs.length);
  }

  function refresh() { document.querySelectorAll("[data-live-stats]").forEach(sparkline); }
  document.body.addEventListener("htmx:wsAfterMessage", refresh);
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", refresh); else refresh();
})();
