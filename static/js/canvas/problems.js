/* Validation marks: the validator's problems on their nodes (mark, badge, tooltip) and in the list. */
(function () {
  "use strict";

  function Problems(container, nodeOf, onPick) {
    const $ = (id) => document.getElementById(id);

    function show(problems) {
      container.querySelectorAll(".drawflow-node.cf-has-error, .drawflow-node.cf-has-warning").forEach((el) => {
        el.classList.remove("cf-has-error", "cf-has-warning");
        el.removeAttribute("title");
        const badge = el.querySelector(".cf-badge");
        if (badge) badge.hidden = true;
      });
      const byNode = {};
      problems.forEach((p) => {
        new Set([p.node, ...(p.nodes || [])].filter(Boolean)).forEach((id) => { (byNode[id] = byNode[id] || []).push(p); });
      });
      Object.entries(byNode).forEach(([id, list]) => {
        const el = nodeOf(id);
        if (!el) return;
        const bad = list.some((p) => p.severity === "error");
        el.classList.add(bad ? "cf-has-error" : "cf-has-warning");
        el.title = list.map((p) => p.text || p.message).join("\n");
        const badge = el.querySelector(".cf-badge");
        if (badge) { badge.hidden = false; badge.textContent = cfNumber(list.length); }
      });
      const ul = $("problems");
      ul.replaceChildren();
      problems.forEach((p) => {
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
      const errorCount = problems.filter((p) => p.severity === "error").length;
      if (!problems.length) {
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
      const el = nodeOf(a.dataset.node);
      if (!el) return;
      el.classList.add("cf-flash");
      setTimeout(() => el.classList.remove("cf-flash"), 1200);
      onPick(a.dataset.node);
    });
    return show;
  }

  window.cf = window.cf || {};
  window.cf.Problems = Problems;
})();
