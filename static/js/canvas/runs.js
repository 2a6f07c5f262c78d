/* Which run the canvas shows. By default the latest: the workflow's live socket follows each new run
 * (workflows/live/consumers.py). Picking one of the last runs in #run-picker shows that run's
 * badges, edge counts and run line as they stand, fetched once from the server (the same fragments
 * the socket sends, swapped out of band); while a run is picked the socket's messages are left
 * unapplied, and picking "the latest" again fetches the latest run's state and lets the socket
 * drive again. The node's samples card reads the run shown. */
(function () {
  "use strict";

  function Runs(url, paint, onPick) {
    const picker = document.getElementById("run-picker");
    let picked = "";
    let seq = 0;

    document.body.addEventListener("htmx:wsBeforeMessage", (e) => { if (picked) e.preventDefault(); });

    async function show(run) {
      const mine = ++seq;
      picker.setAttribute("aria-busy", "true");
      try {
        const query = run ? "?" + new URLSearchParams({ run }) : "";
        const response = await fetch(url + query, { credentials: "same-origin", headers: { "HX-Request": "true" } });
        const html = await response.text();
        if (mine !== seq || !response.ok) return;
        htmx.swap(document.body, html, { swapStyle: "none" });
        paint();
      } finally {
        if (mine === seq) picker.removeAttribute("aria-busy");
      }
    }

    if (picker) {
      picker.addEventListener("change", () => {
        picked = picker.value;
        document.getElementById("canvas-page").classList.toggle("run-picked", !!picked);
        show(picked);
        onPick();
      });
    }
    // The run to ask a node's samples for ("" for the one the canvas follows).
    return { picked: () => picked };
  }

  window.cf = window.cf || {};
  window.cf.Runs = Runs;
})();
