// Review queue keys: j/k move, Enter accepts the proposal, 1-9 pick a label (templates/review/queue.html).
(() => {
  const tasks = [...document.querySelectorAll(".review-task")];
  let at = 0;
  const show = (i) => { tasks.forEach((t, n) => t.classList.toggle("current", n === i)); if (tasks[i]) tasks[i].scrollIntoView({block: "nearest"}); };
  show(at);
  document.addEventListener("keydown", (e) => {
    if (!tasks.length || e.target.matches("input, textarea, select") || e.ctrlKey || e.metaKey || e.altKey) return;
    const task = tasks[at];
    if (e.key === "j") { at = Math.min(at + 1, tasks.length - 1); show(at); }
    else if (e.key === "k") { at = Math.max(at - 1, 0); show(at); }
    else if (e.key === "Enter") { const b = task.querySelector("button.accept"); if (b) { e.preventDefault(); b.click(); } }
    else if (/^[1-9]$/.test(e.key)) { const b = task.querySelector(`button.pick[data-key="${e.key}"]`); if (b) { e.preventDefault(); b.click(); } }
  });
})();
