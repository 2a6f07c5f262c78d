/* The history panel's "Compare side by side" link follows the A and B radios, so it opens the page
 * of the two versions picked (the panel is re-rendered after each save: listen on the document). */
(function () {
  "use strict";

  document.addEventListener("change", (e) => {
    const form = e.target.closest && e.target.closest("form.history");
    const link = form && form.querySelector("#diff-page-link");
    if (!link) return;
    const from = form.querySelector("input[name=from]:checked");
    const to = form.querySelector("input[name=to]:checked");
    if (from && to) link.href = link.dataset.base + "?" + new URLSearchParams({ from: from.value, to: to.value });
  });
})();
