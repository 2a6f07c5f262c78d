"""Large-model budgets kept in the database: concurrent workers never spend more than the cap, a
spent budget hands the item to a person with the reason, and the run page shows what was spent."""

from __future__ import annotations

import socket
import threading

import pytest
from django.db import connection, connections
from django.urls import reverse

from tests.builders import edge, make_workflow, node
from tests.engine.helpers import drain, make_runnable_workflow, tickets
from workflows.engine.budgets import DatabaseBudget, month_of
from workflows.engine.launch import create_run
from workflows.models import Decision, LLMEndpoint, NodeStats, ReviewTask, SpendBudget
from workflows.runtimes.llm import BudgetExceeded

WORKERS, CALLS_EACH, CALL_TOKENS = 8, 12, 30


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"  # nothing listens: any call made would fail


def a_run(user):
    return create_run(make_runnable_workflow(user), user=user, items=tickets(1))


def reserve_concurrently(run_id: int, nodes: list[str], endpoint: str, cap_tokens: int) -> list[int]:
    """WORKERS threads, each with its own database session and its own budget object (as separate
    worker processes would have), reserving and settling against the same rows at once."""
    granted = [0] * WORKERS
    barrier = threading.Barrier(WORKERS)
    failures: list[BaseException] = []

    def worker(index: int) -> None:
        try:
            budget = DatabaseBudget(run_id, nodes[index % len(nodes)], endpoint, max_tokens=cap_tokens, max_eur=0.0)
            barrier.wait()
            for _ in range(CALLS_EACH):
                try:
                    budget.reserve(CALL_TOKENS, 0.01)
                except BudgetExceeded:
                    continue
                granted[index] += 1
                budget.settle((CALL_TOKENS, 0.01), CALL_TOKENS - 5, 0.008)  # the real usage, below the bound
        except BaseException as exc:
            failures.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(WORKERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures, failures
    return granted


def needs_postgresql() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("concurrent reservations need PostgreSQL's row locks (SQLite serialises whole writes)")


@pytest.mark.django_db(transaction=True)
def test_concurrent_workers_never_spend_more_than_the_nodes_cap(personas):
    needs_postgresql()
    run = a_run(personas["operator"])
    LLMEndpoint.objects.create(name="shared", base_url=closed_port_url(), model_name="m", location="on_premise",
                               region="local")
    cap = 500
    granted = reserve_concurrently(run.pk, ["llm"], "shared", cap)
    row = SpendBudget.objects.get(scope="node", run=run, node="llm")
    # A budget in each worker's memory would have let every one of the 8 workers spend the whole cap
    # (19 calls each); together they spend it once.
    assert row.reserved_tokens == 0 and row.spent_tokens == sum(granted) * (CALL_TOKENS - 5) <= cap
    assert row.refused == WORKERS * CALLS_EACH - sum(granted)
    # Refused only once the cap was really near: at worst every worker held a reservation at once.
    assert sum(granted) >= (cap - WORKERS * CALL_TOKENS) // (CALL_TOKENS - 5)
    month = SpendBudget.objects.get(scope="endpoint", endpoint="shared", month=month_of())
    assert month.spent_tokens == row.spent_tokens and month.reserved_tokens == 0 and month.cap_tokens == 0


@pytest.mark.django_db(transaction=True)
def test_concurrent_runs_never_spend_more_than_the_endpoints_monthly_cap(personas):
    needs_postgresql()
    run = a_run(personas["operator"])
    LLMEndpoint.objects.create(name="capped", base_url=closed_port_url(), model_name="m", location="on_premise",
                               region="local", monthly_budget_tokens=300)
    granted = reserve_concurrently(run.pk, ["a", "b", "c", "d"], "capped", 0)  # no node caps: only the month's
    month = SpendBudget.objects.get(scope="endpoint", endpoint="capped", month=month_of())
    assert month.cap_tokens == 300 and month.reserved_tokens == 0
    assert month.spent_tokens == sum(granted) * (CALL_TOKENS - 5) <= 300
    assert sum(granted) >= (300 - WORKERS * CALL_TOKENS) // (CALL_TOKENS - 5)
    nodes = SpendBudget.objects.filter(scope="node", run=run)
    assert sum(n.spent_tokens for n in nodes) == month.spent_tokens  # a refused month rolled the node back
    assert all(n.reserved_tokens == 0 for n in nodes)


def test_a_refused_reservation_reserves_nothing_and_says_which_budget(personas):
    run = a_run(personas["operator"])
    LLMEndpoint.objects.create(name="ep", base_url=closed_port_url(), model_name="m", location="on_premise",
                               region="local", monthly_budget_tokens=1000)
    budget = DatabaseBudget(run.pk, "llm", "ep", max_tokens=100, max_eur=0.0)
    budget.reserve(80, 0.0)
    with pytest.raises(BudgetExceeded, match=r"the budget of node 'llm' for this run is spent \(0 of 100 tokens"):
        budget.reserve(30, 0.0)
    budget.settle((80, 0.0), 0, 0.0)  # the call failed: released
    other = DatabaseBudget(run.pk, "other", "ep", max_tokens=0, max_eur=0.0)
    other.reserve(990, 0.0)
    with pytest.raises(BudgetExceeded, match=r"the monthly budget of endpoint 'ep' for .* is spent"):
        budget.reserve(30, 0.0)
    node_row = SpendBudget.objects.get(scope="node", run=run, node="llm")
    assert (node_row.reserved_tokens, node_row.spent_tokens, node_row.refused) == (0, 0, 1)  # rolled back


GRAPH_PROMPT = "Reply to: {text}"


def llm_graph(**config):
    return {"nodes": [node("src", "source.upload", fields=["text"]),
                      node("llm", "llm", endpoint="local-smollm2", prompt=GRAPH_PROMPT, output_field="reply",
                           max_tokens=8, temperature=0.0, timeout=120, **config),
                      node("out", "sink.table")],
            "edges": [edge("src", "llm"), edge("llm", "out")]}


ITEMS = [{"text": f"Say OK number {i}"} for i in range(3)]


def test_a_spent_monthly_budget_parks_every_item_without_a_call_and_the_run_page_shows_it(
        packaged_models, personas, client):
    LLMEndpoint.objects.filter(name="local-smollm2").update(base_url=closed_port_url(), monthly_budget_tokens=10)
    workflow = make_workflow(personas["operator"], llm_graph(), name="Capped month")
    run = create_run(workflow, user=personas["operator"], items=ITEMS)
    drain()
    run.refresh_from_db()
    assert run.items_parked == 3 and run.items_dead == 0
    held = Decision.objects.filter(run=run, node="llm")
    reason = (f"the monthly budget of endpoint 'local-smollm2' for {month_of()} is spent (0 of 10 tokens used); "
              "sent to review")
    assert {d.port for d in held} == {"parked"}
    assert [d.output["llm_skipped"] for d in held] == [{"reason": reason, "budget_exhausted": True}] * 3
    task = ReviewTask.objects.filter(run=run).first()
    assert task.instructions == f"{reason[0].upper()}{reason[1:]}: write the reply yourself."
    client.force_login(personas["operator"])
    page = client.get(reverse("run-detail", args=[run.pk])).content.decode()
    assert 'id="budgets"' in page and 'id="budget-endpoint-local-smollm2"' in page
    row = page.split('id="budget-endpoint-local-smollm2"')[1].split("</tr>")[0]
    assert "0 / 10" in row and "3 items sent to a person" in row


def test_a_spent_node_budget_sends_one_item_to_the_real_model_and_the_rest_to_a_person(
        packaged_models, local_llm, personas, client):
    LLMEndpoint.objects.filter(name="local-smollm2").update(base_url=local_llm)
    # Room for one call's upper bound (prompt characters + chat template + max_tokens), not two.
    bound = len(GRAPH_PROMPT.format(text=ITEMS[0]["text"])) + 32 + 8
    workflow = make_workflow(personas["operator"], llm_graph(budget_tokens=bound + 10), name="Capped node")
    run = create_run(workflow, user=personas["operator"], items=ITEMS)
    drain()
    run.refresh_from_db()
    assert run.items_done == 1 and run.items_parked == 2 and run.items_dead == 0
    answered = Decision.objects.get(run=run, node="llm", port="out")
    used = answered.output["llm"]["tokens_in"] + answered.output["llm"]["tokens_out"]
    row = SpendBudget.objects.get(scope="node", run=run, node="llm")
    assert (row.spent_tokens, row.reserved_tokens, row.refused, row.cap_tokens) == (used, 0, 2, bound + 10)
    parked = Decision.objects.filter(run=run, node="llm", port="parked")
    # Refused while the first call was under way (its bound held) or after it (its real usage spent).
    reasons = [d.output["llm_skipped"]["reason"] for d in parked]
    assert all(r.startswith("the budget of node 'llm' for this run is spent (") and r.endswith("; sent to review")
               and (f"({used} of {bound + 10} tokens, €" in r or "tokens held by calls under way" in r)
               for r in reasons), reasons
    assert NodeStats.objects.get(run=run, node="llm").extra.get("llm_calls") == 1
    client.force_login(personas["operator"])
    page = client.get(reverse("run-detail", args=[run.pk])).content.decode()
    shown = page.split('id="budget-node-llm"')[1].split("</tr>")[0]
    assert f"{used} / {bound + 10}" in shown and "2 items sent to a person" in shown
