"""Large-model budgets that hold across workers: the client's Budget, kept in the database.

Every call reserves an upper bound of its cost on two rows, the node's budget for this run and the
endpoint's budget for the month, with one conditional UPDATE each (`... WHERE cap = 0 OR spent +
reserved + amount <= cap`) in a short transaction of its own. PostgreSQL re-checks the condition on
the newest row version after waiting for a concurrent updater's lock, so N workers reserving at once
queue on the row and never spend more than the cap. The reply settles the reservation to the real
usage; a failed call releases it.

The client's threads use the connection of the thread that built the budget (serialised by the
budget's lock): a thread-pool thread must not open, and leak, a connection of its own per call.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, TypeVar

from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.db.models import F, Q
from django.utils import timezone

from workflows.formats import money, number
from workflows.models import LLMEndpoint, NodeStats, Run, SpendBudget
from workflows.notifications import events as notifications
from workflows.runtimes.llm import Budget, BudgetExceeded

T = TypeVar("T")
CENT_MILLIONTHS = Decimal("0.000001")


def _eur(value: float) -> Decimal:
    return Decimal(str(value)).quantize(CENT_MILLIONTHS, rounding=ROUND_HALF_UP)


def month_of(when: Any = None) -> str:
    return timezone.localtime(when or timezone.now()).strftime("%Y-%m")


def node_budget(run_id: int, node: str, cap_tokens: int, cap_eur: float) -> SpendBudget:
    """The node's row for this run; created on the first shard, seeded with what the node's stats
    already record (a run started before budgets were kept here)."""
    row = SpendBudget.objects.filter(scope=SpendBudget.NODE, run_id=run_id, node=node).first()
    if row is None:
        stats = NodeStats.objects.filter(run_id=run_id, node=node).values_list("extra", flat=True).first() or {}
        row, _ = SpendBudget.objects.get_or_create(
            scope=SpendBudget.NODE, run_id=run_id, node=node,
            defaults={"cap_tokens": cap_tokens, "cap_eur": _eur(cap_eur),
                      "spent_tokens": int(stats.get("tokens", 0)), "spent_eur": _eur(float(stats.get("cost_eur", 0)))})
    if row.cap_tokens != cap_tokens or row.cap_eur != _eur(cap_eur):
        SpendBudget.objects.filter(pk=row.pk).update(cap_tokens=cap_tokens, cap_eur=_eur(cap_eur))
    return row


def endpoint_budget(endpoint: str, month: str) -> SpendBudget:
    caps = LLMEndpoint.objects.filter(name=endpoint).values("monthly_budget_tokens", "monthly_budget_eur").first() \
        or {"monthly_budget_tokens": 0, "monthly_budget_eur": 0}
    row, created = SpendBudget.objects.get_or_create(
        scope=SpendBudget.ENDPOINT, endpoint=endpoint, month=month,
        defaults={"cap_tokens": caps["monthly_budget_tokens"], "cap_eur": caps["monthly_budget_eur"]})
    if not created and (row.cap_tokens, row.cap_eur) != (caps["monthly_budget_tokens"], caps["monthly_budget_eur"]):
        # The administrator changed the cap: it applies from now on.
        SpendBudget.objects.filter(pk=row.pk).update(cap_tokens=caps["monthly_budget_tokens"],
                                                     cap_eur=caps["monthly_budget_eur"])
    return row


def _within_cap(tokens: int, eur: Decimal) -> Q:
    return ((Q(cap_tokens=0) | Q(cap_tokens__gte=F("spent_tokens") + F("reserved_tokens") + tokens))
            & (Q(cap_eur=0) | Q(cap_eur__gte=F("spent_eur") + F("reserved_eur") + eur)))


def refusal(row: SpendBudget) -> str:
    """Why a call was not made, in the item's trace and the reviewer's instructions (English, as
    every stored reason)."""
    if row.scope == SpendBudget.NODE:
        where = f"the budget of node '{row.node}' for this run"
    else:
        where = f"the monthly budget of endpoint '{row.endpoint}' for {row.month}"
    caps = [f"{row.spent_tokens} of {row.cap_tokens} tokens" if row.cap_tokens else "",
            f"€{row.spent_eur:.2f} of €{row.cap_eur:.2f}" if row.cap_eur else ""]
    held = f", {row.reserved_tokens} tokens held by calls under way" if row.reserved_tokens else ""
    return f"{where} is spent ({', '.join(c for c in caps if c)} used{held})"


class DatabaseBudget(Budget):
    """The node's and the endpoint's budgets in the database. The in-process figures it inherits
    count what this process spent (informative); the caps are checked on the rows only."""

    def __init__(self, run_id: int, node: str, endpoint: str, *, max_tokens: int, max_eur: float,
                 using: str = DEFAULT_DB_ALIAS):
        super().__init__(0, 0.0)
        self.cap_tokens, self.cap_eur = max_tokens, max_eur
        self.endpoint = endpoint
        self.using = using
        self.node_row = node_budget(run_id, node, max_tokens, max_eur).pk
        self.endpoint_rows: dict[str, int] = {}
        self.owner = threading.get_ident()
        self.connection = connections[using]

    def reserve(self, tokens: int, eur: float) -> None:
        self._on_connection(lambda: self._reserve(tokens, _eur(eur)))
        with self.lock:
            self.reserved_tokens += tokens
            self.reserved_eur += eur

    def settle(self, reserved: tuple[int, float], tokens: int, eur: float) -> None:
        self._on_connection(lambda: self._settle(reserved[0], _eur(reserved[1]), tokens, _eur(eur)))
        super().settle(reserved, tokens, eur)

    def _rows(self) -> list[int]:
        month = month_of()
        if month not in self.endpoint_rows:
            self.endpoint_rows[month] = endpoint_budget(self.endpoint, month).pk
        # Always the node's row first, then the endpoint's: one lock order for every worker, no deadlock.
        return [self.node_row, self.endpoint_rows[month]]

    def _reserve(self, tokens: int, eur: Decimal) -> None:
        refused = None
        rows = self._rows()
        try:
            with transaction.atomic(using=self.using):
                for pk in rows:
                    budgets = SpendBudget.objects.using(self.using).filter(pk=pk)
                    if not budgets.filter(_within_cap(tokens, eur)).update(
                            reserved_tokens=F("reserved_tokens") + tokens, reserved_eur=F("reserved_eur") + eur):
                        refused = pk
                        raise BudgetExceeded("")  # rolls back the rows already reserved
        except BudgetExceeded:
            spent = SpendBudget.objects.using(self.using).filter(pk=refused)
            # The first refusal is the news: the conditional UPDATE picks one caller among concurrent ones.
            first = spent.filter(refused=0).update(refused=1) == 1
            if not first:
                spent.update(refused=F("refused") + 1)
            row = spent.get()
            if first:
                notifications.budget_exhausted(row)
            raise BudgetExceeded(refusal(row)) from None

    def _settle(self, reserved_tokens: int, reserved_eur: Decimal, tokens: int, eur: Decimal) -> None:
        with transaction.atomic(using=self.using):
            for pk in self._rows():
                SpendBudget.objects.using(self.using).filter(pk=pk).update(
                    reserved_tokens=F("reserved_tokens") - reserved_tokens,
                    reserved_eur=F("reserved_eur") - reserved_eur,
                    spent_tokens=F("spent_tokens") + tokens, spent_eur=F("spent_eur") + eur)

    def _on_connection(self, operation: Callable[[], T]) -> T:
        with self.lock:
            if threading.get_ident() == self.owner:
                return operation()
            self.connection.inc_thread_sharing()
            connections[self.using] = self.connection
            try:
                return operation()
            finally:
                del connections[self.using]
                self.connection.dec_thread_sharing()


def budget_rows(run: Run) -> list[dict[str, Any]]:
    """The run page's budget table: each large-model node's spend against its cap, and the monthly
    budget of each endpoint the run's nodes use."""
    rows = list(SpendBudget.objects.filter(scope=SpendBudget.NODE, run=run).order_by("node"))
    endpoints = {str((n.get("config") or {}).get("endpoint")) for n in run.version.graph.get("nodes", [])
                 if n.get("id") in {r.node for r in rows} and (n.get("config") or {}).get("endpoint")}
    rows += list(SpendBudget.objects.filter(scope=SpendBudget.ENDPOINT, endpoint__in=endpoints, month=month_of())
                 .order_by("endpoint"))
    return [{"scope": row.scope, "name": row.node if row.scope == SpendBudget.NODE else row.endpoint,
             "month": row.month, "exhausted": row.exhausted, "refused": row.refused,
             "tokens": number(row.spent_tokens), "cap_tokens": number(row.cap_tokens) if row.cap_tokens else "",
             "eur": money(row.spent_eur), "cap_eur": money(row.cap_eur) if row.cap_eur else ""}
            for row in rows]
