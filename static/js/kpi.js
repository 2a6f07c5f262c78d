// KPI charts (vendored uPlot) and the cascade what-if slider. Data comes from json_script tags the
// server rendered; every number here was computed on the server (workflows/kpi/readers.py). Numbers,
// month and day names follow the page's language (<html lang>); words come from gettext().
(function () {
  "use strict";
  const COLORS = ["#0f6e56", "#b54708", "#3538cd", "#667085"];
  const NAMES = {documents: gettext("Documents"), automation: gettext("Automation %"),
    accuracy: gettext("Spot-checked accuracy %"), cycle_median_h: gettext("Median h"), cycle_p95_h: gettext("p95 h"),
    savings_eur: gettext("Savings €")};
  const LANG = document.documentElement.lang || undefined;

  function readJSON(id) {
    const el = document.getElementById(id);
    return el ? JSON.parse(el.textContent) : null;
  }

  // uPlot writes its time axis with English month and day names unless given the language's own.
  function dateNames() {
    const month = (style) => Array.from({length: 12}, (_, m) =>
      new Intl.DateTimeFormat(LANG, {month: style, timeZone: "UTC"}).format(Date.UTC(2024, m, 1)));
    // 7 January 2024 was a Sunday: uPlot's day names start on Sunday, as Date.getDay() does.
    const day = (style) => Array.from({length: 7}, (_, d) =>
      new Intl.DateTimeFormat(LANG, {weekday: style, timeZone: "UTC"}).format(Date.UTC(2024, 0, 7 + d)));
    return {MMMM: month("long"), MMM: month("short"), WWWW: day("long"), WWW: day("short")};
  }

  function drawCharts() {
    const trend = readJSON("kpi-trend");
    if (!trend || typeof uPlot === "undefined") return;
    const names = dateNames();
    const number = (v) => v == null ? "—" : cfNumber(v);
    // The weeks start at midnight in the site's time zone, which the page names.
    const zone = document.documentElement.dataset.timeZone || undefined;
    const ticks = new Intl.DateTimeFormat(LANG, {day: "numeric", month: "short", timeZone: zone});
    const dayMonth = (seconds) => seconds == null ? "" : ticks.format(new Date(seconds * 1000));
    document.querySelectorAll(".kpi-chart").forEach(function (box) {
      const keys = box.dataset.series.split(",");
      const data = [trend.x].concat(keys.map(function (k) { return trend[k]; }));
      const width = Math.max(300, box.clientWidth || 400);
      const week = {label: gettext("Week"), value: function (u, v, s, i) { return i == null ? "" : trend.label[i]; }};
      const lines = keys.map(function (k, i) {
        return {label: NAMES[k] || k, stroke: COLORS[i % COLORS.length], width: 2, spanGaps: true,
          points: {show: true, size: 6}, value: function (u, v) { return number(v); }};
      });
      const opts = {
        width: width, height: 200,
        fmtDate: function (template) { return uPlot.fmtDate(template, names); },
        scales: {x: {time: true}},
        series: [week].concat(lines),
        // Day and month in the language's order ("6 gen" in Italian; uPlot's own ticks are "1/6").
        axes: [{values: function (u, splits) { return splits.map(dayMonth); }},
          {size: 56, values: function (u, splits) { return splits.map(number); }}],
      };
      box.textContent = "";
      new uPlot(opts, data, box);
      box.dataset.ready = "true";
    });
  }

  function pct(x) { return x == null ? "—" : cfNumber(x * 100, 1) + " %"; }
  // The same words as the server's euros (workflows/formats.py: money), with the cent's fractions.
  function eur(x) {
    return x == null ? "—" : interpolate(gettext("€ %(amount)s"), {amount: cfNumber(x, x < 0.1 ? 4 : 2)}, true);
  }

  function wireWhatIf() {
    const tables = readJSON("kpi-whatif");
    if (!tables) return;
    document.querySelectorAll(".funnel[data-node]").forEach(function (box) {
      const rows = tables[box.dataset.node] || [];
      const slider = box.querySelector(".wi-slider");
      function show() {
        const row = rows.find(function (r) { return Math.round(r.threshold * 100) === Number(slider.value); });
        box.querySelector(".wi-threshold").textContent = cfNumber(Number(slider.value) / 100, 2);
        if (!row) return;
        const acc = row.small_accuracy;
        box.querySelector(".wi-accuracy").textContent = acc.n
          ? interpolate(gettext("%(rate)s [%(low)s – %(high)s], n=%(n)s"),
            {rate: pct(acc.rate), low: pct(acc.low), high: pct(acc.high), n: cfNumber(acc.n)}, true)
          : gettext("no reviewed documents above this threshold");
        box.querySelector(".wi-automation").textContent = pct(row.automation_rate);
        box.querySelector(".wi-delivered").textContent = pct(row.accuracy);
        box.querySelector(".wi-cost").textContent = eur(row.eur_per_document);
        box.querySelector(".wi-split").textContent =
          [cfNumber(row.small), cfNumber(row.large, 1), cfNumber(row.human, 1)].join(" / ");
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
