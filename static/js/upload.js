// Upload forms (form[data-upload]) sent by htmx: a progress bar while the file travels, and the page
// that comes back swapped in even when it is a 400 (it says what is wrong with the file).
(function () {
  "use strict";

  function parts(form) {
    var box = form.querySelector(".upload-progress");
    return box && { box: box, bar: box.querySelector("progress"), status: box.querySelector(".upload-status") };
  }

  // The form that sent the request (for swap events, event.target is the element swapped into).
  function uploadForm(event) {
    var elt = (event.detail && event.detail.requestConfig && event.detail.requestConfig.elt) || event.target;
    return elt && elt.closest ? elt.closest("form[data-upload]") : null;
  }

  var megabyteFormats = {};
  function megabytes(bytes) {
    var digits = bytes < 1e7 ? 1 : 0;
    if (!megabyteFormats[digits]) {
      megabyteFormats[digits] = new Intl.NumberFormat(document.documentElement.lang || undefined,
        { style: "unit", unit: "megabyte", minimumFractionDigits: digits, maximumFractionDigits: digits });
    }
    return megabyteFormats[digits].format(bytes / 1e6);
  }

  var shareFormat = new Intl.NumberFormat(document.documentElement.lang || undefined, { style: "percent" });
  function share(percent) { return shareFormat.format(percent / 100); }

  document.addEventListener("htmx:xhr:progress", function (event) {
    var form = uploadForm(event);
    var ui = form && parts(form);
    if (!ui || !event.detail.lengthComputable) return;
    // htmx reports the response's download under the same name: only a body at least as large as
    // the chosen file is the upload.
    var input = form.querySelector("input[type=file]");
    var chosen = input && input.files && input.files.length ? input.files[0].size : 0;
    if (!chosen || event.detail.total < chosen) return;
    var percent = Math.round((event.detail.loaded / event.detail.total) * 100);
    ui.box.hidden = false;
    ui.bar.value = percent;
    ui.status.textContent = percent < 100
      ? interpolate(gettext("Uploading… %(sent)s of %(size)s (%(percent)s)"),
        { sent: megabytes(event.detail.loaded), size: megabytes(event.detail.total), percent: share(percent) }, true)
      : interpolate(gettext("Uploaded %(size)s: checking every row…"), { size: megabytes(event.detail.total) }, true);
  });

  document.addEventListener("htmx:beforeRequest", function (event) {
    var form = uploadForm(event);
    if (!form) return;
    form.querySelectorAll("button").forEach(function (b) { b.disabled = true; });
    var ui = parts(form);
    if (ui) { ui.box.hidden = false; ui.bar.value = 0; ui.status.textContent = gettext("Starting the upload…"); }
  });

  document.addEventListener("htmx:afterRequest", function (event) {
    var form = uploadForm(event);
    if (form) form.querySelectorAll("button").forEach(function (b) { b.disabled = false; });
  });

  document.addEventListener("htmx:beforeSwap", function (event) {
    var form = uploadForm(event);
    if (form && event.detail.xhr.status === 400) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });
})();
