/* Live metrics on the canvas: items out per connection, drawn along each edge.
 *
 * The server swaps each node's badge (#cf-live-<id>) and #cf-live-edges (items out per node and
 * port) through the workflow's socket (templates/live/). Edge counts are drawn here, along each
 * connection; badges of an earlier run are cleared when the canvas follows a new one.
 */
(function () {
  "use strict";

  const SVG = "http://www.w3.org/2000/svg";

  function Live(editor, container, dfData, portIndex) {
    function livePorts() {
      const el = document.getElementById("cf-live-edges");
      if (!el || !el.dataset.run) return null;
      try { return { run: el.dataset.run, ports: JSON.parse(el.dataset.ports || "{}") }; } catch (_) { return null; }
    }

    function paint() {
      const live = livePorts();
      container.querySelectorAll(".cf-live[data-run]").forEach((badge) => {
        if (!live || badge.dataset.run !== live.run) { badge.replaceChildren(); badge.removeAttribute("data-run"); badge.className = "cf-live"; }
      });
      const data = dfData();
      container.querySelectorAll("svg.connection").forEach((svg) => {
        let label = svg.querySelector("text.cf-edge-count");
        const from = Array.from(svg.classList).find((c) => c.startsWith("node_out_node-"));
        const out = Array.from(svg.classList).find((c) => /^output_\d+$/.test(c));
        const source = from && data[from.slice("node_out_node-".length)];
        const port = source && out ? source.data.outputs[portIndex(out)] : null;
        const count = live && source && live.ports[source.data.id] ? live.ports[source.data.id][port] : undefined;
        const path = svg.querySelector("path.main-path");
        if (count === undefined || !path) { if (label) label.remove(); return; }
        if (!label) {
          label = document.createElementNS(SVG, "text");
          label.setAttribute("class", "cf-edge-count");
          label.setAttribute("text-anchor", "middle");
          svg.appendChild(label);
        }
        const length = path.getTotalLength();
        const mid = path.getPointAtLength(length * 0.4); // nearer the source: edges that meet stay apart
        label.setAttribute("x", String(mid.x));
        label.setAttribute("y", String(mid.y - 6));
        label.dataset.source = source.data.id;
        label.dataset.port = port;
        label.textContent = cfNumber(count);
      });
    }

    document.body.addEventListener("htmx:wsAfterMessage", paint);
    ["nodeMoved", "connectionCreated", "connectionRemoved", "nodeRemoved", "import"].forEach(
      (name) => editor.on(name, () => setTimeout(paint, 0)));
    return paint;
  }

  window.cf = window.cf || {};
  window.cf.Live = Live;
})();
