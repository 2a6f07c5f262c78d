/* What part of the canvas is seen: zoom buttons with a true label, Fit, and the wheel to scroll.
 *
 * Fit never goes below READABLE: a workflow too big for the screen at that zoom opens at its start
 * (top left) and the rest is reached by scrolling (wheel, shift+wheel, or dragging the background).
 * Ctrl+wheel zooms (drawflow's own).
 */
(function () {
  "use strict";

  const READABLE = 0.7; // node titles are 13 px: about 9 px on screen, still legible
  const PAD = 20;

  function View(editor, container, nodeBoxes) {
    const label = document.querySelector("[data-zoom=reset]");

    function apply() {
      editor.precanvas.style.transform = "translate(" + editor.canvas_x + "px, " + editor.canvas_y + "px) scale(" + editor.zoom + ")";
    }
    function showZoom(zoom) {
      if (label) label.textContent = cfNumber(Math.round(zoom * 100)) + "%";
    }

    function fit() {
      const boxes = nodeBoxes();
      if (!boxes.length) return;
      let minX = Infinity, minY = Infinity, maxX = -Infinity, maxY = -Infinity;
      boxes.forEach((b) => {
        minX = Math.min(minX, b.x);
        minY = Math.min(minY, b.y);
        maxX = Math.max(maxX, b.x + b.width);
        maxY = Math.max(maxY, b.y + b.height);
      });
      const width = container.clientWidth;
      const height = container.clientHeight;
      const zoom = Math.max(READABLE, Math.min(1, (width - 2 * PAD) / (maxX - minX), (height - 2 * PAD) / (maxY - minY)));
      // drawflow scales around the centre of its canvas: screen = c + (p - c) * zoom + translate.
      const cx = editor.precanvas.clientWidth / 2;
      const cy = editor.precanvas.clientHeight / 2;
      const fitsX = (maxX - minX) * zoom <= width - PAD;
      const fitsY = (maxY - minY) * zoom <= height - PAD;
      editor.zoom = zoom;
      editor.zoom_last_value = zoom;
      editor.canvas_x = fitsX ? width / 2 - cx - ((minX + maxX) / 2 - cx) * zoom : PAD - cx - (minX - cx) * zoom;
      editor.canvas_y = fitsY ? height / 2 - cy - ((minY + maxY) / 2 - cy) * zoom : PAD - cy - (minY - cy) * zoom;
      apply();
      editor.dispatch("zoom", zoom);
    }

    // The part of the canvas on screen, in canvas coordinates.
    function visibleArea() {
      const rect = container.getBoundingClientRect();
      const inner = editor.precanvas.getBoundingClientRect();
      return { x: (rect.x - inner.x) / editor.zoom, y: (rect.y - inner.y) / editor.zoom,
        width: rect.width / editor.zoom, height: rect.height / editor.zoom };
    }

    editor.on("zoom", showZoom);
    container.addEventListener("wheel", (e) => {
      if (e.ctrlKey) return;
      e.preventDefault();
      const dx = e.shiftKey && !e.deltaX ? e.deltaY : e.deltaX;
      const dy = e.shiftKey && !e.deltaX ? 0 : e.deltaY;
      editor.canvas_x -= dx;
      editor.canvas_y -= dy;
      apply();
    }, { passive: false });
    document.querySelectorAll("[data-zoom]").forEach((btn) => {
      btn.addEventListener("click", () => {
        const how = btn.dataset.zoom;
        if (how === "in") editor.zoom_in();
        else if (how === "out") editor.zoom_out();
        else if (how === "reset") editor.zoom_reset();
        else fit();
      });
    });
    showZoom(editor.zoom);
    return { fit, visibleArea, READABLE };
  }

  window.cf = window.cf || {};
  window.cf.View = View;
})();
