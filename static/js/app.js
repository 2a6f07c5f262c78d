// Small behaviours every page may use, kept out of the templates because the Content-Security-Policy
// runs no inline script or event-handler attribute:
//   <select data-autosubmit>      submits its form when changed (list filters, the language switcher);
//   <button data-print>           prints the page;
//   <form data-confirm="…">       asks the question before submitting (what cannot be undone);
//   cfNumber(value, digits)       a number written the way the page's language writes it ("1.250,5" in
//                                 Italian, "1,250.5" in English), for the other scripts. Strings shown to
//                                 people go through gettext() from the catalogue base.html loads first.
(function () {
  "use strict";
  const formats = {};
  window.cfNumber = function (value, digits) {
    const key = digits === undefined ? "any" : String(digits);
    if (!formats[key]) {
      const options = digits === undefined ? {} : { minimumFractionDigits: digits, maximumFractionDigits: digits };
      formats[key] = new Intl.NumberFormat(document.documentElement.lang || undefined, options);
    }
    return formats[key].format(value);
  };

  document.addEventListener("change", function (e) {
    const select = e.target.closest && e.target.closest("[data-autosubmit]");
    if (select && select.form) select.form.submit();
  });
  document.addEventListener("click", function (e) {
    if (e.target.closest && e.target.closest("[data-print]")) window.print();
  });
  // Capture phase: the question comes before htmx (a boosted form) sees the submit.
  document.addEventListener("submit", function (e) {
    const question = e.target.getAttribute && e.target.getAttribute("data-confirm");
    if (question && !window.confirm(question)) {
      e.preventDefault();
      e.stopPropagation();
    }
  }, true);
})();
