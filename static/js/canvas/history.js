/* Undo and redo for the canvas: a list of snapshots since the last save.
 *
 * Each user action (a node added, moved, deleted, a connection, a setting applied) ends in one
 * snapshot; drawflow fires several events for one action (a deleted node removes its connections
 * first), so `record` waits for the events of the action to finish before it takes the snapshot.
 * Snapshots are plain JSON text: comparing two tells whether anything changed.
 */
(function () {
  "use strict";

  const LIMIT = 200;

  function History(take, restore) {
    let states = [];
    let index = -1;
    let pending = null;
    let saved = null;

    function commit() {
      clearTimeout(pending);
      pending = null;
      const snap = take();
      if (states[index] === snap) return;
      states = states.slice(0, index + 1);
      states.push(snap);
      if (states.length > LIMIT) states.shift();
      index = states.length - 1;
    }

    return {
      reset() { clearTimeout(pending); pending = null; states = [take()]; index = 0; saved = states[0]; },
      record() { if (!pending) pending = setTimeout(commit, 0); },
      flush() { if (pending) commit(); },
      undo() {
        this.flush();
        if (index <= 0) return false;
        index -= 1;
        restore(states[index]);
        return true;
      },
      redo() {
        this.flush();
        if (index >= states.length - 1) return false;
        index += 1;
        restore(states[index]);
        return true;
      },
      atSaved() { return states[index] === saved; },
    };
  }

  window.cf = window.cf || {};
  window.cf.History = History;
})();
