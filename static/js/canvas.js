/* Cognitive Factory canvas: the one JavaScript module of the app, in parts (static/js/canvas/):
 * convert.js (our graph JSON <-> drawflow's), layout.js (placing nodes), history.js (undo/redo),
 * view.js (zoom, fit, scrolling), problems.js (validation marks), live.js (live edge counts).
 *
 * drawflow owns the drawing (nodes, ports, connections, zoom, pan). This file wires the parts and
 * talks to the server: saving goes through the REST API with `parent` = the version loaded (409 on
 * a stale parent); the node panel, a node's last items, history and diff are server-rendered HTML
 * swapped in by htmx. Words shown to people go through gettext(), numbers through cfNumber().
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
  const narrow = cf.Narrow(editor, boot.canEdit); // a phone only looks: view mode

  // ---------------------------------------------------------------- helpers

  function dfData() { return editor.drawflow.drawflow[MODULE].data; }
  function portIndex(key) { return Number(key.split("_")[1]) - 1; }
  function sameList(a, b) { return a.length === b.length && a.every((x, i) => x === b[i]); }
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

  const convert = cf.Convert(catalog, MODULE);
  const { typeTitle, portsOf, nodeClass, liveId, nodeHtml, toDrawflow } = convert;
  function toGraph() { return convert.toGraph(dfData()); }

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
    edits.record();
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

  function boxOf(dfId) {
    const n = dfData()[dfId];
    const el = nodeEl(dfId);
    return { x: n.pos_x, y: n.pos_y, width: el ? el.offsetWidth : cf.layout.SIZE.width,
      height: el ? el.offsetHeight : cf.layout.SIZE.height };
  }

  // A node added by a click goes where nothing else is: after the selected node (and connected to
  // it), else in the visible part of the canvas.
  function freeSpot(after) {
    const rects = Object.keys(dfData()).map(boxOf);
    if (after) {
      const b = boxOf(after);
      return cf.layout.freeSpot(rects, cf.layout.SIZE, { x: b.x + cf.layout.COLUMN, y: b.y }, null);
    }
    return cf.layout.freeSpot(rects, cf.layout.SIZE, null, view.visibleArea());
  }

  function selectedNode() {
    const el = editor.node_selected;
    return el && el.isConnected ? Number(el.id.slice(5)) : null;
  }

  function select(dfId) {
    container.querySelectorAll(".drawflow-node.selected").forEach((el) => el.classList.remove("selected"));
    const el = nodeEl(dfId);
    if (!el) return;
    el.classList.add("selected");
    editor.node_selected = el;
  }

  function addNodeAt(type, at, after) {
    if (!boot.canEdit || !catalog[type]) return null;
    const id = uniqueId(type);
    const p = portsOf(type);
    const d = { id, type, config: {}, label: "", inputs: p.inputs, outputs: p.outputs };
    const spot = at || freeSpot(after);
    state.quiet++;
    let dfId;
    try {
      dfId = editor.addNode(type, p.inputs.length, p.outputs.length, Math.round(spot.x), Math.round(spot.y), nodeClass(type), d, nodeHtml(d));
      if (after && p.inputs.length && dfData()[after].data.outputs.length) {
        editor.addConnection(after, dfId, "output_1", "input_1");
      }
    } finally {
      state.quiet--;
    }
    state.byOurId[id] = dfId;
    decoratePorts(dfId);
    markDirty();
    if (!at) select(dfId); // the next click chains after this one
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
    if (state.panelNode && !(state.panelNode in state.byOurId)) panelGone();
    markDirty();
  });
  function panelGone() {
    state.panelNode = null;
    const gone = document.createElement("p");
    gone.className = "muted";
    gone.textContent = gettext("Node deleted.");
    $("panel").replaceChildren(gone);
    $("samples").replaceChildren();
  }
  editor.on("nodeMoved", () => markDirty(false));
  editor.on("connectionCreated", () => markDirty());
  editor.on("connectionRemoved", () => markDirty());
  editor.on("nodeSelected", (dfId) => openPanel(Number(dfId)));

  // drawflow selects nothing in fixed or view mode; the panel still shows settings (read-only).
  container.addEventListener("click", (e) => {
    const el = e.target.closest(".drawflow-node");
    if (el && editor.editor_mode !== "edit") openPanel(Number(el.id.slice(5)));
  });

  // ---------------------------------------------------------------- palette

  if (boot.canEdit) {
    document.querySelectorAll(".palette-item[draggable]").forEach((item) => {
      item.addEventListener("dragstart", (e) => {
        e.dataTransfer.setData("application/x-cf-node", item.dataset.type);
        e.dataTransfer.setData("text/plain", item.dataset.type);
        e.dataTransfer.effectAllowed = "copy";
      });
      item.addEventListener("click", () => addNodeAt(item.dataset.type, null, selectedNode()));
      item.addEventListener("keydown", (e) => {
        if (e.key === "Enter" || e.key === " ") { e.preventDefault(); addNodeAt(item.dataset.type, null, selectedNode()); }
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
    loadSamples(n.data.id, seq);
  }

  // What the node did in the workflow's latest run: its last items in and out, its dead letters.
  async function loadSamples(nodeId, seq) {
    if (!boot.urls.samples) return;
    const query = new URLSearchParams({ node: nodeId, run: runs.picked() });
    const response = await fetch(boot.urls.samples + "?" + query,
      { credentials: "same-origin", headers: { "HX-Request": "true" } });
    const html = await response.text();
    if (seq !== panelSeq || !response.ok) return;
    htmx.swap("#samples", html, { swapStyle: "innerHTML" });
  }

  // A post of the form (on a change) can come back while a field is being typed in: the answer
  // re-renders the form, so the field keeps what was typed since the post left (and its caret).
  let typedSincePost = false;
  let typing = null;
  document.body.addEventListener("htmx:beforeRequest", (e) => {
    if (e.detail.elt && e.detail.elt.id === "node-form") typedSincePost = false;
  });
  document.body.addEventListener("htmx:beforeSwap", (e) => {
    const active = document.activeElement;
    typing = null;
    if (e.detail.target && e.detail.target.id === "panel" && active && active.id && $("panel").contains(active) &&
        (active.tagName === "TEXTAREA" || (active.tagName === "INPUT" && !["checkbox", "radio"].includes(active.type)))) {
      typing = { id: active.id, value: active.value, typed: typedSincePost,
        start: active.selectionStart, end: active.selectionEnd };
    }
  });
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
  $("panel").addEventListener("input", () => { state.panelDirty = true; typedSincePost = true; });
  // A late answer for a node that is no longer in the panel applies its config but does not swap.
  document.body.addEventListener("htmx:beforeSwap", (e) => {
    const form = e.detail.requestConfig && e.detail.requestConfig.elt;
    if (form && form.id === "node-form" && form.dataset.node !== state.panelNode) e.detail.shouldSwap = false;
  });
  document.body.addEventListener("htmx:afterSwap", (e) => {
    if (!e.detail.target || e.detail.target.id !== "panel") return;
    state.panelDirty = false;
    const was = typing;
    typing = null;
    const field = was && $(was.id);
    if (!field) return;
    if (was.typed) {
      field.value = was.value;
      state.panelDirty = true; // applied with the next change, or before a save
    }
    field.focus();
    try { field.setSelectionRange(was.start, was.end); } catch (_) { /* not a text field */ }
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

  const paintProblems = cf.Problems(container, (id) => nodeEl(state.byOurId[id]), (id) => openPanel(state.byOurId[id]));
  function showProblems(problems) {
    state.problems = problems || [];
    paintProblems(state.problems);
  }

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
    // The publication card: a save makes a draft, so "Draft vN · Live vM", the diff and Publish move.
    if (boot.urls.publication) htmx.ajax("GET", boot.urls.publication, { target: "#publication", swap: "innerHTML" });
  }

  async function save() {
    if (!boot.canEdit || state.saving) return null;
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
        edits.reset();
        return r.body;
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
    return null;
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
    if (r.status === 201) leave("/workflows/" + r.body.id + "/");
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

  // ---------------------------------------------------------------- undo, keys, leaving

  // Undo and redo restore whole snapshots (graph + port names): drawflow has no undo of its own.
  const edits = cf.History(() => JSON.stringify({ graph: toGraph(), ports: portsNow() }), (text) => {
    const snap = JSON.parse(text);
    editor.node_selected = null;
    editor.connection_selected = null;
    load(snap.graph, snap.ports);
    state.dirty = !edits.atSaved();
    $("dirty").hidden = !state.dirty;
    if (state.panelNode && state.panelNode in state.byOurId) openPanel(state.byOurId[state.panelNode]);
    else if (state.panelNode) panelGone();
    scheduleValidate(0);
    paintLive();
  });
  function portsNow() {
    const ports = {};
    Object.values(dfData()).forEach((n) => { ports[n.data.id] = { inputs: n.data.inputs, outputs: n.data.outputs }; });
    return ports;
  }

  function inField(target) {
    return target && (target.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName));
  }

  // One listener, before drawflow's (capture on window): Delete/Backspace typed in a field edit the
  // field, never the drawing; outside fields they delete the selected connection or node.
  window.addEventListener("keydown", (e) => {
    const mod = e.ctrlKey || e.metaKey;
    const key = e.key.toLowerCase();
    if (mod && key === "s") {
      e.preventDefault();
      save();
      return;
    }
    if (e.key === "Delete" || e.key === "Backspace") {
      e.stopPropagation(); // drawflow's own handler skips connections and fields it did not see focused
      if (inField(e.target) || !narrow.editing()) return;
      e.preventDefault();
      if (editor.connection_selected) editor.removeConnection();
      else if (editor.node_selected && editor.node_selected.isConnected) editor.removeNodeId(editor.node_selected.id);
      return;
    }
    if (!mod || inField(e.target) || !narrow.editing()) return;
    if ((key === "z" && e.shiftKey) || key === "y") { e.preventDefault(); edits.redo(); }
    else if (key === "z") { e.preventDefault(); edits.undo(); }
  }, true);

  window.addEventListener("beforeunload", (e) => {
    if (!boot.canEdit || !(state.dirty || state.panelDirty)) return;
    e.preventDefault();
    e.returnValue = ""; // browsers show their own words
  });
  function leave(url) {
    state.dirty = false;
    state.panelDirty = false;
    window.location.assign(url);
  }

  // Publishing and a test run use the saved draft: with changes on screen, offer to save them first,
  // then act on the version just saved. Delegated, since the publication card is re-rendered after
  // every save. (Ordinary runs use the live version, which saving does not change.)
  const needsSave = async (e) => {
    const el = e.target.closest && e.target.closest("[data-needs-save]");
    if (!el || (e.type === "submit") !== (el.tagName === "FORM")) return;
    if (!boot.canEdit || !(state.dirty || state.panelDirty)) return;
    e.preventDefault();
    if (!window.confirm(gettext("You have unsaved changes; publishing and test runs use the saved draft. Save them now and use the new version?"))) return;
    const saved = await save();
    if (!saved || !saved.is_runnable) return; // the save result says why
    if (el.tagName === "FORM") {
      if (el.elements.version) el.elements.version.value = saved.number;
      el.submit();
    } else {
      const url = new URL(el.href, window.location.href);
      if (url.searchParams.has("version")) url.searchParams.set("version", saved.number);
      leave(url.toString());
    }
  };
  document.addEventListener("click", needsSave);
  document.addEventListener("submit", needsSave);

  // ---------------------------------------------------------------- view, arrange, live metrics

  // Arrange on demand: layers left to right in the graph's topological order, then fit.
  function arrange() {
    if (!boot.canEdit) return;
    const graph = toGraph();
    const sizes = {};
    Object.keys(dfData()).forEach((dfId) => { sizes[dfData()[dfId].data.id] = boxOf(dfId); });
    const spots = cf.layout.layers(graph, sizes);
    graph.nodes.forEach((n) => { n.position = spots[n.id]; });
    const panelNode = state.panelNode;
    load(graph, portsNow());
    state.panelNode = panelNode;
    markDirty(false);
    view.fit();
    paintLive();
  }
  const arrangeButton = $("arrange");
  if (arrangeButton) arrangeButton.addEventListener("click", arrange);


  const view = cf.View(editor, container, () => Object.keys(dfData()).map(boxOf));
  const paintLive = cf.Live(editor, container, dfData, portIndex);
  const runs = cf.Runs(boot.urls.run, paintLive, () => {
    if (state.panelNode in state.byOurId) loadSamples(state.panelNode, panelSeq);
  });

  // ---------------------------------------------------------------- start

  load(boot.graph, boot.ports);
  showProblems(boot.problems);
  edits.reset();
  view.fit(); // readable, whole if it fits; else from its start, the rest by scrolling
  if (boot.graph.nodes.length) scheduleValidate(0);
  container.dataset.ready = "true";

  // For tests and the browser console.
  window.cfCanvas = { editor, toGraph, toDrawflow, load, save, fit: view.fit, arrange, edits, state, paintLive, liveId };
})();
