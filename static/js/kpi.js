// KPI charts (vendored uPlot) and the cascade what-if slider. Data comes from json_script tags the
// server rendered; every number here was computed on the server (workflows/kpi/readers.py).
(function () {
  "use strict";
  const COLORS = ["#0f6e56", "#b54708", "#3538cd", "#667085"];
  const NAMES = {documents: "Documents", automation: "Automation %", accuracy: "Reviewed accuracy %",
    cycle_median_h: "Median h", cycle_p95_h: "p95 h", savings_eur: "Savings €"};

  function readJSON(id) {
    const el = document.getElementById(id);
    return el ? JSON.parse(el.textContent) : null;
  }

  function drawCharts() {
    const trend = readJSON("kpi-trend");
    if (!trend || typeof uPlot === "undefined") return;
    document.querySelectorAll(".kpi-chart").forEach(function (box) {
      const keys = box.dataset.series.split(",");
      const data = [trend.x].concat(keys.map(function (k) { return trend[k]; }));
      const width = Math.max(300, box.clientWidth || 400);
      const opts = {
        width: width, height: 200,
        scales: {x: {time: true}},
        series: [{label: "Week", value: function (u, v, s, i) { return i == null ? "" : trend.label[i]; }}].concat(
          keys.map(function (k, i) {
            return {label: NAMES[k] || k, stroke: COLORS[i % COLORS.length], width: 2, spanGaps: true,
              points: {show: true, size: 6}};
          })),
        axes: [{}, {size: 56}],
      };
      box.textContent = "";
      new uPlot(opts, data, box);
      box.dataset.ready = "true";
    });
  }

  function pct(x) { return x == null ? "—" : (x * 100).toFixed(1) + " %"; }
  function eur(x) { return x == null ? "—" : "€ " + x.toFixed(x < 0.1 ? 4 : 2); }

  function wireWhatIf() {
    const tables = readJSON("kpi-whatif");
    if (!tables) return;
    document.querySelectorAll(".funnel[data-node]").forEach(function (box) {
      const rows = tables[box.dataset.node] || [];
      const slider = box.querySelector(".wi-slider");
      function show() {
        const row = rows.find(function (r) { return Math.round(r.threshold * 100) === Number(slider.value); });
        box.querySelector(".wi-threshold").textContent = (Number(slider.value) / 100).toFixed(2);
        if (!row) return;
        const acc = row.small_accuracy;
        box.querySelector(".wi-automation").textContent = pct(row.automation_rate);
        box.querySelector(".wi-accuracy").textContent = acc.n ? pct(acc.rate) + " [" + pct(acc.low) + " – " + pct(acc.high) + "], n=" + acc.n
          : "no reviewed documents above this threshold";
        box.querySelector(".wi-delivered").textContent = pct(row.accuracy);
        box.querySelector(".wi-cost").textContent = eur(row.eur_per_document);
        box.querySelector(".wi-split").textContent = row.small + " / " + row.large.toFixed(1) + " / " + row.human.toFixed(1);
      }
      slider.addEventListener("input", show);
      show();
      box.dataset.ready = "true";
    });
  }

  // Funnel parts are as wide as their document counts: set through the CSSOM, since the
  // Content-Security-Policy refuses style="" attributes in the HTML.
  function sizeFunnels() {
    document.querySelectorAll(".funnel-bar [data-count]").forEach(function (part) {
      part.style.flex = String(Number(part.dataset.count) || 0);
    });
  }

  document.addEventListener("DOMContentLoaded", function () { sizeFunnels(); drawCharts(); wireWhatIf(); });
})();
