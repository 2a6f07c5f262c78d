/* Cognitive Factory canvas: the one JavaScript module of the app.
 *
 * drawflow owns the drawing (nodes, ports, connections, zoom, pan). This module converts between
 * drawflow's export()/import() JSON and our graph JSON, and talks to the server:
 *   - our node id, type, config, label and port names live in each drawflow node's `data`, so ids
 *     stay stable across load and save (drawflow's own numeric ids are throw-away);
 *   - drawflow numbers ports (output_1.., input_1..); data.outputs / data.inputs name them. Route
 *     nodes have one output per branch plus "else"; the server computes the names from the config.
 *   - saving goes through the REST API with `parent` = the version loaded (409 on a stale parent);
 *   - the node panel, history and diff are server-rendered HTML swapped in by htmx.
 * Words shown to people go through gettext() (the catalogue base.html loads), numbers through cfNumber().
 */
(function () {
  "use strict";

  const boot = JSON.parse(document.getElementById("canvas-boot").textContent);
  const catalog = boot.catalog;
  const MODULE = "Home";
  const container = document.getElementById("drawflow");
  const $ = (id) => document.getElementById(id);
  const csrf = (() => {
    try { return JSON.parse(document.body.getAttribute("hx-headers"))["X-CSRFToken"]; } catch (_) { return ""; }
  })();

  const state = {
    version: boot.version,
    dirty: false,
    quiet: 0, // > 0 while we change the drawing ourselves: no dirty flag, no revalidation
    byOurId: {}, // our node id -> drawflow id
    panelNode: null,
    panelDirty: false,
    saving: false,
    problems: [],
  };

  const editor = new Drawflow(container);
  editor.reroute = false;
  editor.force_first_input = true; // dropping a connection on a node body connects to its input
  editor.zoom_min = 0.2;
  editor.zoom_max = 2;
  editor.editor_mode = boot.canEdit ? "edit" : "fixed"; // fixed: pan and look, nothing moves
  editor.start();

  // ---------------------------------------------------------------- helpers

  function esc(text) {
    return String(text).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
  }
  function dfData() { return editor.drawflow.drawflow[MODULE].data; }
  function portIndex(key) { return Number(key.split("_")[1]) - 1; }
  function sameList(a, b) { return a.length === b.length && a.every((x, i) => x === b[i]); }
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
  function nodeEl(dfId) { return document.getElementById("node-" + dfId); }
  function reindex() {
    state.byOurId = {};
    Object.entries(dfData()).forEach(([dfId, n]) => { state.byOurId[n.data.id] = Number(dfId); });
  }
  function decoratePorts(dfId) {
    const n = dfData()[dfId];
    const el = nodeEl(dfId);
    if (!n || !el) return;
    el.dataset.nodeId = n.data.id;
    el.dataset.type = n.data.type;
    n.data.outputs.forEach((name, k) => {
      const port = el.querySelector(".outputs .output_" + (k + 1));
      if (!port) return;
      port.title = interpolate(gettext("output: %(port)s"), { port: name }, true);
      if (n.data.outputs.length > 1 || name !== "out") port.dataset.port = name; else delete port.dataset.port;
    });
    n.data.inputs.forEach((name, k) => {
      const port = el.querySelector(".inputs .input_" + (k + 1));
      if (port) port.title = interpolate(gettext("input: %(port)s"), { port: name }, true);
    });
  }
  function note(text) {
    const box = $("canvas-note");
    box.textContent = text || "";
    box.hidden = !text;
  }

  // ---------------------------------------------------------------- graph <-> drawflow

  function needsLayout(nodes) {
    if (nodes.some((n) => !n.position)) return true;
    const spots = new Set(nodes.map((n) => n.position.x + "," + n.position.y));
    return nodes.length > 1 && spots.size < nodes.length / 2;
  }

  // Graphs made by scripts often have no positions: lay them out in layers (longest path).
  function layout(graph) {
    const preds = {};
    graph.nodes.forEach((n) => { preds[n.id] = []; });
    graph.edges.forEach((e) => { if (preds[e.target] && e.source in preds) preds[e.target].push(e.source); });
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
    const perLayer = {};
    graph.nodes.forEach((n) => { const d = depthOf(n.id); perLayer[d] = (perLayer[d] || 0) + 1; });
    const tallest = Math.max(1, ...Object.values(perLayer));
    const columns = 8;
    const used = {};
    const spots = {};
    graph.nodes.forEach((n) => {
      const d = depthOf(n.id);
      const row = used[d] || 0;
      used[d] = row + 1;
      const band = Math.floor(d / columns);
      spots[n.id] = { x: 40 + (d % columns) * 250, y: 40 + band * (tallest * 110 + 80) + row * 110 };
    });
    return spots;
  }

  // Our graph JSON -> drawflow's import() JSON. Returns the edges drawflow cannot show.
  function toDrawflow(graph, ports) {
    const data = {};
    const dfIdOf = {};
    const spots = needsLayout(graph.nodes) ? layout(graph) : null;
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
  function toGraph() {
    const data = dfData();
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

  function load(graph, ports) {
    const { json, dropped } = toDrawflow(graph, ports);
    state.quiet++;
    try {
      editor.import(json);
    } finally {
      state.quiet--;
    }
    reindex();
    Object.keys(dfData()).forEach(decoratePorts);
    if (dropped.length) {
      const edges = dropped.map((e) => e.source + "." + e.source_port + " → " + e.target + "." + e.target_port)
        .join(", ");
      note(interpolate(ngettext(
        "%(count)s connection could not be drawn (unknown node or port): %(edges)s. Saving will leave it out.",
        "%(count)s connections could not be drawn (unknown node or port): %(edges)s. Saving will leave them out.",
        dropped.length), { count: cfNumber(dropped.length), edges }, true));
    }
  }

  // ---------------------------------------------------------------- editing

  function markDirty(revalidate) {
    if (state.quiet) return;
    state.dirty = true;
    $("dirty").hidden = false;
    if (revalidate !== false) scheduleValidate();
  }

  function uniqueId(type) {
    const base = (type.includes(".") ? type.split(".")[1] : type).replace(/[^a-z0-9_]/g, "_");
    if (!(base in state.byOurId)) return base;
    let k = 2;
    while (base + "_" + k in state.byOurId) k++;
    return base + "_" + k;
  }

  function clientToCanvas(x, y) {
    const rect = editor.precanvas.getBoundingClientRect();
    return { x: (x - rect.x) / editor.zoom, y: (y - rect.y) / editor.zoom };
  }

  function freeSpot() {
    const rect = container.getBoundingClientRect();
    const count = Object.keys(dfData()).length;
    const p = clientToCanvas(rect.x + rect.width / 3, rect.y + rect.height / 3);
    return { x: p.x + (count % 5) * 30, y: p.y + (count % 5) * 30 };
  }

  function addNodeAt(type, at) {
    if (!boot.canEdit || !catalog[type]) return null;
    const id = uniqueId(type);
    const p = portsOf(type);
    const d = { id, type, config: {}, label: "", inputs: p.inputs, outputs: p.outputs };
    const spot = at || freeSpot();
    state.quiet++;
    let dfId;
    try {
      dfId = editor.addNode(type, p.inputs.length, p.outputs.length, Math.round(spot.x), Math.round(spot.y), nodeClass(type), d, nodeHtml(d));
    } finally {
      state.quiet--;
    }
    state.byOurId[id] = dfId;
    decoratePorts(dfId);
    markDirty();
    openPanel(dfId);
    return dfId;
  }

  // Route nodes change their outputs with their branches: keep each connection whose port name survives.
  function setOutputs(dfId, outputs) {
    const n = dfData()[dfId];
    const old = n.data.outputs;
    const keep = [];
    Object.keys(n.outputs).forEach((key) => {
      n.outputs[key].connections.forEach((c) => keep.push({ name: old[portIndex(key)], node: c.node, input: c.output }));
    });
    state.quiet++;
    try {
      for (let k = Object.keys(n.outputs).length; k >= 1; k--) editor.removeNodeOutput(dfId, "output_" + k);
      for (let k = 0; k < outputs.length; k++) editor.addNodeOutput(dfId);
      dfData()[dfId].data.outputs = outputs.slice();
      keep.forEach((c) => {
        const k = outputs.indexOf(c.name);
        if (k >= 0) editor.addConnection(dfId, Number(c.node), "output_" + (k + 1), c.input);
      });
    } finally {
      state.quiet--;
    }
    decoratePorts(dfId);
    const lost = keep.filter((c) => outputs.indexOf(c.name) < 0).map((c) => c.name);
    if (lost.length) {
      note(interpolate(gettext("Connections from removed branches were dropped: %(ports)s."),
        { ports: lost.join(", ") }, true));
    }
  }

  editor.on("nodeCreated", () => markDirty());
  editor.on("nodeRemoved", () => {
    reindex();
    if (state.panelNode && !(state.panelNode in state.byOurId)) {
      state.panelNode = null;
      const gone = document.createElement("p");
      gone.className = "muted";
      gone.textContent = gettext("Node deleted.");
      $("panel").replaceChildren(gone);
    }
    markDirty();
  });
  editor.on("nodeMoved", () => markDirty(false));
  editor.on("connectionCreated", () => markDirty());
  editor.on("connectionRemoved", () => markDirty());
  editor.on("nodeSelected", (dfId) => openPanel(Number(dfId)));

  if (!boot.canEdit) {
    // drawflow selects nothing in fixed mode; the panel still shows settings (read-only).
    container.addEventListener("click", (e) => {
      const el = e.target.closest(".drawflow-node");
      if (el) openPanel(Number(el.id.slice(5)));
    });
  }

  // ---------------------------------------------------------------- palette

  if (boot.canEdit) {
    document.querySelectorAll(".palette-item[draggable]").forEach((item) => {
      item.addEventListener("dragstart", (e) => {
        e.dataTransfer.setData("application/x-cf-node", item.dataset.type);
        e.dataTransfer.setData("text/plain", item.dataset.type);
        e.dataTransfer.effectAllowed = "copy";
      });
      item.addEventListener("click", () => addNodeAt(item.dataset.type, null));
      item.addEventListener("keydown", (e) => {
        if (e.key === "Enter" || e.key === " ") { e.preventDefault(); addNodeAt(item.dataset.type, null); }
      });
    });
    container.addEventListener("dragover", (e) => { e.preventDefault(); e.dataTransfer.dropEffect = "copy"; });
    container.addEventListener("drop", (e) => {
      e.preventDefault();
      const type = e.dataTransfer.getData("application/x-cf-node") || e.dataTransfer.getData("text/plain");
      if (!catalog[type]) return;
      const p = clientToCanvas(e.clientX, e.clientY);
      addNodeAt(type, { x: p.x - 90, y: p.y - 25 });
    });
  }

  // ---------------------------------------------------------------- node panel (htmx)

  // Loads are numbered so that only the last node clicked fills the panel, however the answers race.
  let panelSeq = 0;
  async function openPanel(dfId) {
    const n = dfData()[dfId];
    if (!n) return;
    const seq = ++panelSeq;
    state.panelNode = n.data.id;
    state.panelDirty = false;
    $("panel").setAttribute("aria-busy", "true");
    const query = new URLSearchParams({
      node: n.data.id, type: n.data.type, label: n.data.label || "", config: JSON.stringify(n.data.config || {}),
    });
    const response = await fetch(boot.urls.panel + "?" + query, { credentials: "same-origin", headers: { "HX-Request": "true" } });
    const html = await response.text();
    if (seq !== panelSeq) return;
    htmx.swap("#panel", html, { swapStyle: "innerHTML" });
    state.panelDirty = false;
    $("panel").removeAttribute("aria-busy");
  }
  document.body.addEventListener("htmx:beforeRequest", (e) => {
    if (e.detail.elt && e.detail.elt.id === "node-form") $("panel").setAttribute("aria-busy", "true");
  });
  document.body.addEventListener("htmx:afterRequest", (e) => {
    const elt = e.detail.elt;
    if (elt && (elt.id === "node-form" || elt.id === "panel")) $("panel").removeAttribute("aria-busy");
  });

  // The panel's form posts itself (htmx); a readable config comes back as the cfConfig event.
  document.body.addEventListener("cfConfig", (e) => {
    const info = e.detail;
    const dfId = state.byOurId[info.node];
    if (!dfId) return;
    const n = dfData()[dfId];
    n.data.config = info.config;
    n.data.label = info.label || "";
    n.html = nodeHtml(n.data);
    const title = nodeEl(dfId) && nodeEl(dfId).querySelector(".cf-node-title");
    if (title) title.textContent = n.data.label || typeTitle(n.data.type);
    if (!sameList(n.data.outputs, info.outputs)) setOutputs(dfId, info.outputs);
    state.panelDirty = false;
    markDirty();
  });
  $("panel").addEventListener("input", () => { state.panelDirty = true; });
  // A late answer for a node that is no longer in the panel applies its config but does not swap.
  document.body.addEventListener("htmx:beforeSwap", (e) => {
    const form = e.detail.requestConfig && e.detail.requestConfig.elt;
    if (form && form.id === "node-form" && form.dataset.node !== state.panelNode) e.detail.shouldSwap = false;
  });
  document.body.addEventListener("htmx:afterSwap", (e) => {
    if (e.detail.target && e.detail.target.id === "panel") state.panelDirty = false;
  });
  $("panel").addEventListener("click", (e) => {
    const btn = e.target.closest("[data-action=delete-node]");
    if (!btn || !boot.canEdit) return;
    const dfId = state.byOurId[btn.dataset.node];
    if (dfId) editor.removeNodeId("node-" + dfId);
  });

  // Settings typed but not yet applied (no change event yet) are applied before a save.
  function flushPanel() {
    const form = $("node-form");
    if (!state.panelDirty || !form) return Promise.resolve();
    htmx.trigger(form, "submit");
    return new Promise((resolve) => {
      const started = Date.now();
      const wait = () => (!state.panelDirty || Date.now() - started > 5000 ? resolve() : setTimeout(wait, 40));
      wait();
    });
  }

  // ---------------------------------------------------------------- validation marks

  let validateTimer = null;
  let validateSeq = 0;
  function scheduleValidate(delay) {
    clearTimeout(validateTimer);
    validateTimer = setTimeout(runValidate, delay === undefined ? 350 : delay);
  }

  async function runValidate() {
    const seq = ++validateSeq;
    const r = await api("POST", boot.urls.validate, { graph: toGraph() });
    if (seq !== validateSeq) return; // a newer check is under way
    if (r.ok) showProblems(r.body.problems);
    else showProblems([{ code: "format", severity: "error", node: null, nodes: [], message: describeErrors(r.body) }]);
  }

  function showProblems(problems) {
    state.problems = problems || [];
    container.querySelectorAll(".drawflow-node.cf-has-error, .drawflow-node.cf-has-warning").forEach((el) => {
      el.classList.remove("cf-has-error", "cf-has-warning");
      el.removeAttribute("title");
      const badge = el.querySelector(".cf-badge");
      if (badge) badge.hidden = true;
    });
    const byNode = {};
    state.problems.forEach((p) => {
      new Set([p.node, ...(p.nodes || [])].filter(Boolean)).forEach((id) => { (byNode[id] = byNode[id] || []).push(p); });
    });
    Object.entries(byNode).forEach(([id, list]) => {
      const el = nodeEl(state.byOurId[id]);
      if (!el) return;
      const bad = list.some((p) => p.severity === "error");
      el.classList.add(bad ? "cf-has-error" : "cf-has-warning");
      el.title = list.map((p) => p.text || p.message).join("\n");
      const badge = el.querySelector(".cf-badge");
      if (badge) { badge.hidden = false; badge.textContent = cfNumber(list.length); }
    });
    const ul = $("problems");
    ul.replaceChildren();
    state.problems.forEach((p) => {
      const li = document.createElement("li");
      li.className = p.severity;
      if (p.node) {
        const a = document.createElement("a");
        a.href = "#";
        a.dataset.node = p.node;
        a.textContent = p.node;
        li.append(a, ": ");
      }
      li.append(p.text || p.message);
      ul.append(li);
    });
    const errorCount = state.problems.filter((p) => p.severity === "error").length;
    if (!state.problems.length) {
      const li = document.createElement("li");
      li.className = "muted";
      li.textContent = gettext("None: the workflow can run.");
      ul.append(li);
    }
    $("problem-count").textContent = errorCount
      ? interpolate(ngettext("%(count)s error", "%(count)s errors", errorCount), { count: cfNumber(errorCount) }, true)
      : gettext("runnable");
    $("problem-count").className = "tag " + (errorCount ? "error" : "ok");
  }

  $("problems").addEventListener("click", (e) => {
    const a = e.target.closest("a[data-node]");
    if (!a) return;
    e.preventDefault();
    const dfId = state.byOurId[a.dataset.node];
    if (!dfId) return;
    const el = nodeEl(dfId);
    el.classList.add("cf-flash");
    setTimeout(() => el.classList.remove("cf-flash"), 1200);
    openPanel(dfId);
  });

  // ---------------------------------------------------------------- saving, conflicts, restore

  async function api(method, url, body) {
    const response = await fetch(url, {
      method, credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": csrf },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    let data = null;
    try { data = await response.json(); } catch (_) { data = null; }
    return { status: response.status, ok: response.ok, body: data };
  }

  function describeErrors(body) {
    if (!body) return gettext("The server refused the request.");
    const parts = [];
    const walk = (value, prefix) => {
      if (Array.isArray(value)) value.forEach((v) => walk(v, prefix));
      else if (value && typeof value === "object") Object.entries(value).forEach(([k, v]) => walk(v, k === "detail" ? prefix : k + ": "));
      else parts.push(prefix + value);
    };
    walk(body, "");
    return parts.join(" ");
  }

  function saveResult(text, kind) {
    const box = $("save-result");
    box.textContent = text;
    box.className = "save-result " + (kind || "");
  }

  function versionStatus(number, runnable) {
    $("version-status").textContent = "v" + number + " · " + (runnable ? gettext("runnable") : gettext("not runnable"));
    $("version-status").className = "tag " + (runnable ? "ok" : "warn");
    const link = $("export");
    if (link) link.href = link.dataset.base + "&version=" + number;
  }

  function refreshHistory() {
    htmx.ajax("GET", boot.urls.history, { target: "#history", swap: "innerHTML" });
  }

  async function save() {
    if (!boot.canEdit || state.saving) return;
    state.saving = true;
    saveResult(gettext("Saving…"));
    try {
      await flushPanel();
      const messageBox = $("save-message");
      const r = await api("POST", boot.urls.versions, { graph: toGraph(), parent: state.version, message: messageBox.value.trim() });
      if (r.status === 201) {
        state.version = r.body.number;
        state.dirty = false;
        $("dirty").hidden = true;
        $("conflict").hidden = true;
        messageBox.value = "";
        versionStatus(r.body.number, r.body.is_runnable);
        showProblems(r.body.problems);
        const errorCount = r.body.problems.filter((p) => p.severity === "error").length;
        if (r.body.is_runnable) {
          saveResult(interpolate(gettext("Saved v%(number)s."), { number: r.body.number }, true), "ok");
        } else {
          saveResult(interpolate(ngettext(
            "Saved v%(number)s as a draft: not runnable until %(count)s problem is fixed.",
            "Saved v%(number)s as a draft: not runnable until %(count)s problems are fixed.",
            errorCount), { number: r.body.number, count: cfNumber(errorCount) }, true), "warn");
        }
        refreshHistory();
      } else if (r.status === 409) {
        showConflict(r.body);
        saveResult(gettext("Not saved: someone else saved first."), "error");
      } else if (r.status === 403) {
        saveResult(gettext("Your role may not change this workflow."), "error");
      } else {
        saveResult(interpolate(gettext("Not saved: %(reason)s"), { reason: describeErrors(r.body) }, true), "error");
      }
    } catch (err) {
      saveResult(interpolate(gettext("Not saved: the server could not be reached (%(error)s)."),
        { error: err.message }, true), "error");
    } finally {
      state.saving = false;
    }
  }

  function showConflict(body) {
    let text = (body && body.detail) || gettext("A newer version was saved after the one you edited.");
    if (body && body.latest_message) {
      text += " " + interpolate(gettext("Their message: “%(message)s”."), { message: body.latest_message }, true);
    }
    $("conflict-message").textContent = text;
    $("conflict").hidden = false;
  }

  $("conflict-reload").addEventListener("click", () => { state.dirty = false; window.location.reload(); });
  $("conflict-copy").addEventListener("click", async () => {
    const name = interpolate(gettext("%(name)s (copy)"), { name: boot.name }, true).slice(0, 200);
    const message = interpolate(gettext("Copy of %(name)s v%(version)s with unsaved changes"),
      { name: boot.name, version: state.version }, true);
    const r = await api("POST", boot.urls.create, { name, graph: toGraph(), message });
    if (r.status === 201) window.location.assign("/workflows/" + r.body.id + "/");
    else {
      saveResult(interpolate(gettext("Could not save a copy: %(reason)s"), { reason: describeErrors(r.body) }, true),
        "error");
    }
  });

  document.addEventListener("click", async (e) => {
    const btn = e.target.closest("[data-restore]");
    if (!btn || !boot.canEdit) return;
    if (state.dirty && !window.confirm(gettext("Restoring replaces your unsaved changes on screen. Continue?"))) return;
    const r = await api("POST", boot.urls.versions + btn.dataset.restore + "/restore/", { parent: state.version });
    if (r.status === 201) { state.dirty = false; window.location.reload(); } else if (r.status === 409) showConflict(r.body);
    else {
      saveResult(interpolate(gettext("Not restored: %(reason)s"), { reason: describeErrors(r.body) }, true), "error");
    }
  });

  if (boot.canEdit) $("save").addEventListener("click", save);
  document.addEventListener("keydown", (e) => {
    if ((e.ctrlKey || e.metaKey) && e.key.toLowerCase() === "s") {
      e.preventDefault();
      save();
    }
  });

  // ---------------------------------------------------------------- zoom and fit

  function fit(minZoom) {
    const data = dfData();
    const ids = Object.keys(data);
    if (!ids.length) return;
    let minX = Infinity, minY = Infinity, maxX = -Infinity, maxY = -Infinity;
    ids.forEach((id) => {
      const n = data[id];
      const el = nodeEl(id);
      minX = Math.min(minX, n.pos_x);
      minY = Math.min(minY, n.pos_y);
      maxX = Math.max(maxX, n.pos_x + (el ? el.offsetWidth : 200));
      maxY = Math.max(maxY, n.pos_y + (el ? el.offsetHeight : 70));
    });
    const width = container.clientWidth;
    const height = container.clientHeight;
    const pad = 40;
    const zoom = Math.max(minZoom || editor.zoom_min, Math.min(1, (width - 2 * pad) / (maxX - minX), (height - 2 * pad) / (maxY - minY)));
    // drawflow scales around the centre of its canvas: screen = c + (p - c) * zoom + translate.
    const cx = editor.precanvas.clientWidth / 2;
    const cy = editor.precanvas.clientHeight / 2;
    const tx = width / 2 - cx - ((minX + maxX) / 2 - cx) * zoom;
    const ty = height / 2 - cy - ((minY + maxY) / 2 - cy) * zoom;
    const visible = (maxX - minX) * zoom <= width - pad;
    const visibleY = (maxY - minY) * zoom <= height - pad;
    editor.zoom = zoom;
    editor.zoom_last_value = zoom;
    editor.canvas_x = visible ? tx : pad - cx - (minX - cx) * zoom;
    editor.canvas_y = visibleY ? ty : pad - cy - (minY - cy) * zoom;
    editor.precanvas.style.transform = "translate(" + editor.canvas_x + "px, " + editor.canvas_y + "px) scale(" + zoom + ")";
    editor.dispatch("zoom", zoom);
  }

  document.querySelectorAll("[data-zoom]").forEach((btn) => {
    btn.addEventListener("click", () => {
      const how = btn.dataset.zoom;
      if (how === "in") editor.zoom_in();
      else if (how === "out") editor.zoom_out();
      else if (how === "reset") editor.zoom_reset();
      else fit(editor.zoom_min);
    });
  });

  // ---------------------------------------------------------------- live metrics
  // The server swaps each node's badge (#cf-live-<id>) and #cf-live-edges (items out per node and
  // port) through the workflow's socket (templates/live/). Edge counts are drawn here, along
  // each connection; badges of an earlier run are cleared when the canvas follows a new one.

  const SVG = "http://www.w3.org/2000/svg";
  function livePorts() {
    const el = $("cf-live-edges");
    if (!el || !el.dataset.run) return null;
    try { return { run: el.dataset.run, ports: JSON.parse(el.dataset.ports || "{}") }; } catch (_) { return null; }
  }

  function paintLive() {
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
  document.body.addEventListener("htmx:wsAfterMessage", paintLive);
  ["nodeMoved", "connectionCreated", "connectionRemoved", "nodeRemoved"].forEach((name) => editor.on(name, () => setTimeout(paintLive, 0)));

  // ---------------------------------------------------------------- start

  load(boot.graph, boot.ports);
  showProblems(boot.problems);
  const box = container.getBoundingClientRect();
  const tooBig = Object.values(dfData()).some((n) => n.pos_x + 200 > box.width || n.pos_y + 80 > box.height);
  // Open large graphs readable (not smaller than 60 %), starting from their top-left; Fit shows all.
  if (tooBig) fit(0.6);
  if (boot.graph.nodes.length) scheduleValidate(0);
  container.dataset.ready = "true";

  // For tests and the browser console.
  window.cfCanvas = { editor, toGraph, toDrawflow, load, save, fit, state, paintLive, liveId };
})();
