/* Where nodes go: layered left-to-right placement, and a free spot for a new node.
 *
 * Pure functions over plain data (no drawflow, no DOM), so canvas.js can use them for graphs made by
 * scripts (no positions), for the Arrange button and for a node added from the palette.
 */
(function () {
  "use strict";

  const COLUMN = 250; // a node is 212 px wide; the rest leaves room for port names ("confident")
  const GAP = 40; // between nodes of one layer
  const MARGIN = 40;
  const SIZE = { width: 212, height: 70 };

  function needsLayout(nodes) {
    if (nodes.some((n) => !n.position)) return true;
    const spots = new Set(nodes.map((n) => n.position.x + "," + n.position.y));
    return nodes.length > 1 && spots.size < nodes.length / 2;
  }

  // Layers by longest path from a source (the graph's topological order), one column each, left to
  // right; inside a layer nodes follow the average row of their predecessors, so edges cross less.
  // sizes: {id: {width, height}} where known. Returns {id: {x, y}}.
  function layers(graph, sizes) {
    const preds = {};
    graph.nodes.forEach((n) => { preds[n.id] = []; });
    graph.edges.forEach((e) => { if (preds[e.target] && e.source in preds && e.source !== e.target) preds[e.target].push(e.source); });
    const depth = {};
    const visiting = new Set();
    const depthOf = (id) => {
      if (id in depth) return depth[id];
      if (visiting.has(id)) return 0; // a cycle: the validator reports it
      visiting.add(id);
      let d = 0;
      preds[id].forEach((p) => { d = Math.max(d, depthOf(p) + 1); });
      visiting.delete(id);
      depth[id] = d;
      return d;
    };
    const columns = [];
    graph.nodes.forEach((n, i) => {
      const d = depthOf(n.id);
      (columns[d] = columns[d] || []).push({ id: n.id, order: i });
    });
    const spots = {};
    const rank = {};
    columns.forEach((column, d) => {
      if (!column) return;
      const key = (c) => {
        const ranks = preds[c.id].filter((p) => p in rank).map((p) => rank[p]);
        return ranks.length ? ranks.reduce((a, b) => a + b, 0) / ranks.length : c.order;
      };
      column.sort((a, b) => key(a) - key(b) || a.order - b.order);
      let y = MARGIN;
      column.forEach((c, row) => {
        rank[c.id] = row;
        spots[c.id] = { x: MARGIN + d * COLUMN, y };
        y += ((sizes && sizes[c.id]) || SIZE).height + GAP;
      });
    });
    return spots;
  }

  function overlaps(a, b, margin) {
    return !(a.x + a.width + margin <= b.x || b.x + b.width + margin <= a.x ||
      a.y + a.height + margin <= b.y || b.y + b.height + margin <= a.y);
  }

  // The first spot for a node of `size` that touches no rect: from `start` downwards (after a node),
  // or row by row across `area` (the visible part of the canvas), else to the right of everything.
  function freeSpot(rects, size, start, area) {
    const fits = (p) => !rects.some((r) => overlaps({ x: p.x, y: p.y, ...size }, r, 20));
    if (start) {
      for (let k = 0; k < 50; k++) {
        const p = { x: start.x, y: start.y + k * (size.height + GAP) };
        if (fits(p)) return p;
      }
    }
    if (area) {
      for (let y = area.y + 20; y + size.height <= area.y + area.height; y += size.height / 2) {
        for (let x = area.x + 20; x + size.width <= area.x + area.width; x += size.width / 2) {
          if (fits({ x, y })) return { x, y };
        }
      }
    }
    const right = rects.reduce((m, r) => Math.max(m, r.x + r.width), area ? area.x : 0);
    return { x: right + GAP, y: area ? area.y + 20 : MARGIN };
  }

  window.cf = window.cf || {};
  window.cf.layout = { needsLayout, layers, freeSpot, SIZE, COLUMN };
})();
