"""The sentence of a notification, in the language active when it is read (the page's, or the one the
digest turns on for its reader with translation.override). Stored parameters fill it; a parameter
missing from an old row reads "?" rather than failing the inbox."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext, ngettext

from workflows.models import notifications as kinds


class _Params(dict):
    def __missing__(self, key: str) -> str:
        return "?"


def _drift(p: _Params) -> str:
    return gettext("Drift at step '%(node)s' of %(workflow)s (%(model)s): its decisions no longer look like those "
                   "made after promotion. See the drift page.") % p


def _backlog(p: _Params) -> str:
    if p.get("team") and p.get("reason") == "age":
        return ngettext("The oldest document in the review queue of %(team)s has waited %(hours)s hour (the limit "
                        "is %(sla)s hours); %(open)s documents wait in all.",
                        "The oldest document in the review queue of %(team)s has waited %(hours)s hours (the limit "
                        "is %(sla)s hours); %(open)s documents wait in all.", _count(p.get("hours"))) % p
    if p.get("team"):
        return ngettext("%(open)s document waits in the review queue of %(team)s (the limit is %(limit)s).",
                        "%(open)s documents wait in the review queue of %(team)s (the limit is %(limit)s).",
                        _count(p.get("open"))) % p
    if p.get("reason") == "age":
        return ngettext("The oldest document in the review queue has waited %(hours)s hour (the limit is %(sla)s "
                        "hours); %(open)s documents wait in all.",
                        "The oldest document in the review queue has waited %(hours)s hours (the limit is %(sla)s "
                        "hours); %(open)s documents wait in all.", _count(p.get("hours"))) % p
    return ngettext("%(open)s document waits in the review queue (the limit is %(limit)s).",
                    "%(open)s documents wait in the review queue (the limit is %(limit)s).", _count(p.get("open"))) % p


def _promotion_waiting(p: _Params) -> str:
    return gettext("%(requested_by)s asks to make %(version)s %(alias)s (request #%(number)s): it waits for a "
                   "validator's decision.") % p


def _promotion_decided(p: _Params) -> str:
    if p.get("decision") == "approved":
        return gettext("%(decided_by)s approved request #%(number)s: %(version)s is now %(alias)s.") % p
    return gettext("%(decided_by)s rejected request #%(number)s (%(version)s as %(alias)s): %(reason)s") % p


def _schedule_failed(p: _Params) -> str:
    return gettext("The schedule '%(node)s' of %(workflow)s did not start a run: %(reason)s") % p


def _run_failed(p: _Params) -> str:
    return ngettext("Run #%(run)s of %(workflow)s failed: its %(total)s document did not finish (see its dead "
                    "letters).",
                    "Run #%(run)s of %(workflow)s failed: none of its %(total)s documents finished (see its dead "
                    "letters).", _count(p.get("total"))) % p


def _budget_exhausted(p: _Params) -> str:
    if p.get("scope") == "endpoint":
        return gettext("The monthly large-model budget of endpoint '%(endpoint)s' for %(month)s is spent: documents "
                       "that need it go to people.") % p
    return gettext("The large-model budget of step '%(node)s' in run #%(run)s of %(workflow)s is spent: its "
                   "documents go to people.") % p


def _pack_ready(p: _Params) -> str:
    return gettext("The weekly pack of %(workflow)s for %(week)s is ready to sign.") % p


def _publication_waiting(p: _Params) -> str:
    return gettext("%(requested_by)s asks to publish version %(version)s of %(workflow)s (live now: "
                   "%(live)s): it waits for a second person's decision.") % p


def _publication_decided(p: _Params) -> str:
    if p.get("decision") == "approved":
        return gettext("%(decided_by)s approved publishing version %(version)s of %(workflow)s: it is live now.") % p
    return gettext("%(decided_by)s rejected publishing version %(version)s of %(workflow)s: %(reason)s") % p


SENTENCES = {
    kinds.DRIFT: _drift,
    kinds.REVIEW_BACKLOG: _backlog,
    kinds.PROMOTION_WAITING: _promotion_waiting,
    kinds.PROMOTION_DECIDED: _promotion_decided,
    kinds.SCHEDULE_FAILED: _schedule_failed,
    kinds.RUN_FAILED: _run_failed,
    kinds.BUDGET_EXHAUSTED: _budget_exhausted,
    kinds.PACK_READY: _pack_ready,
    kinds.PUBLICATION_WAITING: _publication_waiting,
    kinds.PUBLICATION_DECIDED: _publication_decided,
}


def _count(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def text(kind: str, params: Any) -> str:
    """What happened, in the active language."""
    sentence = SENTENCES.get(kind)
    if sentence is None:
        return gettext("Something happened that this version cannot describe (%(kind)s).") % {"kind": kind}
    return sentence(_Params(params if isinstance(params, dict) else {}))


def title(kind: str) -> str:
    return str(kinds.KINDS.get(kind, kind))
