"""Run statuses and the ledger's ports with a meaning of their own: the words that the models store
and the engine moves through. Pure, no Django: both sides import it, so neither imports the other.
"""

from workflows.graph.text import pgettext

QUEUED = "queued"
RUNNING = "running"
# Nothing left for a machine: every remaining item waits for a person in the review queue. Not final:
# the run goes back to running when a decision resumes an item, and finishes after the last one.
WAITING = "waiting"
SUCCEEDED = "succeeded"
COMPLETED_WITH_ERRORS = "completed_with_errors"
FAILED = "failed"
CANCELLED = "cancelled"
RUN_STATUSES = (QUEUED, RUNNING, WAITING, SUCCEEDED, COMPLETED_WITH_ERRORS, FAILED, CANCELLED)
# Active: not final, so it may be cancelled and its page keeps listening (a waiting run resumes).
ACTIVE_RUN_STATUSES = frozenset({QUEUED, RUNNING, WAITING})
FINAL_RUN_STATUSES = frozenset({SUCCEEDED, COMPLETED_WITH_ERRORS, FAILED, CANCELLED})

# Ports with a meaning of their own in the ledger.
PARKED = "parked"  # a review node holds the item
DEAD = "dead"  # the item failed here and nothing is wired to take it
ERROR_PORT = "error"

# What a person reads for each status: marked for makemessages, with a context because Italian needs
# the gender of what is described (a run is "riuscita", an item "completato"); pages and the API
# translate them at display (workflows/design/texts.py status_label). The stored words never change.
RUN_STATUS_LABELS = {
    QUEUED: pgettext("run status", "queued"),
    RUNNING: pgettext("run status", "running"),
    WAITING: pgettext("run status", "waiting for review"),
    SUCCEEDED: pgettext("run status", "succeeded"),
    COMPLETED_WITH_ERRORS: pgettext("run status", "completed with errors"),
    FAILED: pgettext("run status", "failed"),
    CANCELLED: pgettext("run status", "cancelled"),
}
ITEM_STATUS_LABELS = {
    "pending": pgettext("item status", "pending"),
    "done": pgettext("item status", "done"),
    PARKED: pgettext("item status", "parked"),
    DEAD: pgettext("item status", "dead"),
}
