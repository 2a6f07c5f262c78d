"""Run statuses and the ledger's ports with a meaning of their own: the words that the models store
and the engine moves through. Pure, no Django: both sides import it, so neither imports the other.
"""

QUEUED = "queued"
RUNNING = "running"
SUCCEEDED = "succeeded"
COMPLETED_WITH_ERRORS = "completed_with_errors"
FAILED = "failed"
CANCELLED = "cancelled"
RUN_STATUSES = (QUEUED, RUNNING, SUCCEEDED, COMPLETED_WITH_ERRORS, FAILED, CANCELLED)
ACTIVE_RUN_STATUSES = frozenset({QUEUED, RUNNING})
FINAL_RUN_STATUSES = frozenset({SUCCEEDED, COMPLETED_WITH_ERRORS, FAILED, CANCELLED})

# Ports with a meaning of their own in the ledger.
PARKED = "parked"  # a review node holds the item
DEAD = "dead"  # the item failed here and nothing is wired to take it
ERROR_PORT = "error"
