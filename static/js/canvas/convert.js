/* Our graph JSON <-> drawflow's JSON, and how a node looks on the canvas.
 *
 *   - our node id, type, config, label and port names live in each drawflow node's `data`, so ids
 *     stay stable across load and save (drawflow's own numeric ids are throw-away);
 *   - drawflow numbers ports (output_1.., input_1..); data.outputs / data.inputs name them.
 */
(function () {
  "use strict";

  function Convert(catalog, MODULE) {
    function portIndex(key) { return Number(key.split("_")[1]) - 1; }
    function esc(text) {
      return String(text).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
    }
    function typeTitle(type) { return catalog[type] ? catalog[type].title : type; }
    function portsOf(type) {
      const t = catalog[type];
      return t ? { inputs: t.inputs.slice(), outputs: t.outputs.slice() } : { inputs: ["in"], outputs: ["out"] };
    }
    function nodeClass(type) { return "cf-node cf-" + (catalog[type] ? catalog[type].group : "unknown"); }
    // The same encoding as workflows/live/groups.py dom_id(): live fragments find their node by id.
    function liveId(id) {
      return Array.from(String(id)).map((c) => (/[A-Za-z0-9_-]/.test(c) ? c : "_" + c.codePointAt(0).toString(16) + "_")).join("");
    }
    function nodeHtml(d) {
      const sub = catalog[d.type] ? catalog[d.type].title
        : interpolate(gettext("unknown type %(type)s"), { type: d.type }, true);
      return '<div class="cf-node-head"><span class="cf-node-title">' + esc(d.label || typeTitle(d.type)) +
        '</span><span class="cf-badge" hidden></span></div><div class="cf-node-sub">' + esc(sub) +
        ' · <code>' + esc(d.id) + '</code></div><div class="cf-live" id="cf-live-' + esc(liveId(d.id)) + '"></div>';
    }
    // Our graph JSON -> drawflow's import() JSON. Returns the edges drawflow cannot show.
    function toDrawflow(graph, ports) {
      const data = {};
      const dfIdOf = {};
      const spots = cf.layout.needsLayout(graph.nodes) ? cf.layout.layers(graph) : null;
      graph.nodes.forEach((n, i) => { dfIdOf[n.id] = i + 1; });
      graph.nodes.forEach((n, i) => {
        const p = (ports && ports[n.id]) || portsOf(n.type);
        const d = { id: n.id, type: n.type, config: n.config || {}, label: n.label || "", inputs: p.inputs.slice(), outputs: p.outputs.slice() };
        const inputs = {};
        const outputs = {};
        d.inputs.forEach((_, k) => { inputs["input_" + (k + 1)] = { connections: [] }; });
        d.outputs.forEach((_, k) => { outputs["output_" + (k + 1)] = { connections: [] }; });
        const at = spots ? spots[n.id] : n.position;
        data[i + 1] = {
          id: i + 1, name: n.type, data: d, class: nodeClass(n.type), html: nodeHtml(d), typenode: false,
          inputs, outputs, pos_x: at.x, pos_y: at.y,
        };
      });
      const dropped = [];
      graph.edges.forEach((e) => {
        const s = dfIdOf[e.source];
        const t = dfIdOf[e.target];
        const out = s ? data[s].data.outputs.indexOf(e.source_port) : -1;
        const inp = t ? data[t].data.inputs.indexOf(e.target_port) : -1;
        if (out < 0 || inp < 0 || s === t) { dropped.push(e); return; }
        const outKey = "output_" + (out + 1);
        const inKey = "input_" + (inp + 1);
        const conns = data[s].outputs[outKey].connections;
        if (conns.some((c) => c.node === String(t) && c.output === inKey)) { dropped.push(e); return; }
        conns.push({ node: String(t), output: inKey });
        data[t].inputs[inKey].connections.push({ node: String(s), input: outKey });
      });
      return { json: { drawflow: { [MODULE]: { data } } }, dropped };
    }

    // drawflow's state -> our graph JSON (nodes in drawflow-id order, which is load order + new ones).
    function toGraph(data) {
      const nodes = [];
      const edges = [];
      Object.keys(data).map(Number).sort((a, b) => a - b).forEach((dfId) => {
        const n = data[dfId];
        const d = n.data;
        const node = { id: d.id, type: d.type, config: JSON.parse(JSON.stringify(d.config || {})), position: { x: n.pos_x, y: n.pos_y } };
        if (d.label) node.label = d.label;
        nodes.push(node);
        Object.keys(n.outputs).forEach((outKey) => {
          n.outputs[outKey].connections.forEach((c) => {
            const target = data[c.node];
            if (!target) return;
            edges.push({
              source: d.id, source_port: d.outputs[portIndex(outKey)],
              target: target.data.id, target_port: target.data.inputs[portIndex(c.output)],
            });
          });
        });
      });
      return { nodes, edges };
    }

    return { esc, typeTitle, portsOf, nodeClass, liveId, nodeHtml, toDrawflow, toGraph };
  }

  window.cf = window.cf || {};
  window.cf.Convert = Convert;
})();
