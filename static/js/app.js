// Small behaviours every page may use, kept out of the templates because the Content-Security-Policy
// runs no inline script or event-handler attribute:
//   <select data-autosubmit>      submits its form when changed (list filters);
//   <button data-print>           prints the page.
(function () {
  "use strict";
  document.addEventListener("change", function (e) {
    const select = e.target.closest && e.target.closest("[data-autosubmit]");
    if (select && select.form) select.form.submit();
  });
  document.addEventListener("click", function (e) {
    if (e.target.closest && e.target.closest("[data-print]")) window.print();
  });
})();
