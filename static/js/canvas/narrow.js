/* On a phone (≤ 720 px) the canvas is for looking: drawflow's "view" mode pans and zooms, and nothing
 * can be dragged, connected or deleted; the palette and the save button are hidden by the page's CSS.
 * A window made wider gives an editor back the "edit" mode (a viewer stays in "fixed"). */
(function () {
  "use strict";

  const PHONE = "(max-width: 720px)";

  function Narrow(editor, canEdit) {
    const query = window.matchMedia(PHONE);
    function apply() {
      editor.editor_mode = query.matches ? "view" : (canEdit ? "edit" : "fixed");
      if (query.matches) { editor.node_selected = null; editor.connection_selected = null; }
    }
    query.addEventListener("change", apply);
    apply();
    // Whether the drawing may change now (the keyboard and the palette ask this).
    return { editing: () => canEdit && editor.editor_mode === "edit" };
  }

  window.cf = window.cf || {};
  window.cf.Narrow = Narrow;
})();
