"""Starting, feeding, cancelling and finishing runs; resuming reviewed items; retrying dead letters.

Every function here is one transaction that leaves the database consistent: a run's rows, its items,
its shards and the shard tasks (the task queue lives in the same database, so enqueueing inside the
transaction is atomic with the rows; the monitor still re-enqueues any shard whose task is lost).
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext

from workflows import statuses
from workflows.design.publishing import readiness
from workflows.graph.plan import Plan
from workflows.models import DeadLetter, Decision, Item, NodeStats, Run, Shard, Workflow
from workflows.models.audit import record
from workflows.models.lifecycle import review_answer_for_audit
from workflows.models.review import ReviewTask
from workflows.notifications import events as notifications
from workflows.roles import require

from . import documents, state
from .tasks import run_shard_task

logger = logging.getLogger(__name__)
# The source nodes an origin's items may enter by, preferred first. A file (or JSON items through the
# API) enters by any source: REST and schedule sources take items with the same fields, so a workflow
# built for a stream (the gallery's Ticket triage) runs on a file too, its rows checked against the
# fields of the source they enter by (source_fields). Live intake and schedules keep their own.
ACCEPTED_SOURCES = {"upload": ("source.upload", "source.rest", "source.schedule"), "rest": ("source.rest",),
                    "schedule": ("source.schedule",), "api": ("source.upload", "source.rest", "source.schedule"),
                    "webhook": ("source.webhook",), "mailbox": ("source.mailbox",)}
ITEM_BATCH = 2000


class StartError(Exception):
    """The run cannot start; `problems` says why, each problem how to fix it (in the language of the
    request that tried: runs start from a page or the API; a schedule's worker writes English)."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__(" ".join(problems))


def check_runnable(version: Any, origin: str) -> tuple[Plan, str, dict[str, dict]]:
    """(plan, source node id, resolved models) or StartError listing every reason it cannot run: those
    publishing checks too (design/publishing.py: readiness), and those of this process and origin."""
    ready = readiness(version)
    if ready.plan is None:
        raise StartError(ready.problems)
    the_plan, models = ready.plan, ready.models
    problems = list(ready.problems)  # missing handlers included (apps.py hands that check to readiness)
    if Workflow.objects.filter(pk=version.workflow_id, archived=True).exists():
        problems.insert(0, gettext("The workflow is archived: restore it to start runs or take items."))
    accepted = ACCEPTED_SOURCES[origin]
    sources = [s.node.id for s in sorted((s for s in the_plan.sources if s.node.type in accepted),
                                         key=lambda s: accepted.index(s.node.type))]
    if not sources:
        problems.append(gettext("The workflow has no '%(source)s' source node, so it cannot take items from "
                                "%(origin)s.") % {"source": "', '".join(accepted), "origin": origin})
    if problems:
        raise StartError(problems)
    return the_plan, sources[0], models


def entry_source(nodes: list[dict[str, Any]], origin: str) -> dict[str, Any] | None:
    """The source node (as stored in a graph) that items from `origin` enter by, or None."""
    accepted = ACCEPTED_SOURCES[origin]
    found = [n for n in nodes if n.get("type") in accepted]
    return min(found, key=lambda n: accepted.index(n["type"]), default=None)


def source_fields(workflow: Any, origin: str = "upload") -> list[str]:
    """The fields every item from `origin` must carry: those of the source it enters by (in the live
    version, which is what the items will run on)."""
    live = workflow.live
    node = entry_source(live.graph.get("nodes", []) if live else [], origin)
    fields = ((node or {}).get("config") or {}).get("fields") or ["text"]
    return [f for f in fields if isinstance(f, str)]


def enqueue_shard(shard: Any) -> None:
    # The enqueue also wakes the idle workers when the transaction commits (engine/wakeup.py).
    result = run_shard_task.enqueue(shard.pk, shard.attempt)
    type(shard).objects.filter(pk=shard.pk).update(task_id=str(result.id))


def make_shards(run: Any, upto: int) -> int:
    """Shards (and their tasks) for items [run.sharded_upto, upto). The caller holds the run row."""
    made = 0
    start = run.sharded_upto
    while start < upto:
        end = min(upto, start + run.shard_size)
        shard = Shard.objects.create(run=run, start_seq=start, end_seq=end)
        enqueue_shard(shard)
        start = end
        made += 1
    if made:
        type(run).objects.filter(pk=run.pk).update(sharded_upto=upto)
        run.sharded_upto = upto
    return made


def add_items(run: Any, payloads: list[dict]) -> list[int]:
    """Append items to a run (the caller holds the run row locked). Returns their ids in order."""
    first = run.items_total
    now = timezone.now()
    if connection.vendor == "postgresql":
        ids = insert_items_pg(run.pk, first, payloads, now)
    else:
        ids = []
        for start in range(0, len(payloads), ITEM_BATCH):
            chunk = [Item(run=run, seq=first + start + i, payload=p, received_at=now)
                     for i, p in enumerate(payloads[start : start + ITEM_BATCH])]
            Item.objects.bulk_create(chunk, batch_size=ITEM_BATCH)
            ids += [i.pk for i in chunk]
        if any(i is None for i in ids):  # backends that do not return ids from bulk inserts
            ids = list(Item.objects.filter(run=run, seq__gte=first).order_by("seq").values_list("id", flat=True))
    Run.objects.filter(pk=run.pk).update(items_total=F("items_total") + len(ids), last_intake_at=now)
    run.items_total = first + len(ids)
    documents.on_items_added(run, payloads)  # originals recorded; pages to OCR pin the OCR model
    return ids


# PostgreSQL: a chunk of items in one statement from one JSON text (the ORM's bulk_create built a
# model instance and adapted a parameter per field: 80 % of a 2,000-item run's start time).
INSERT_ITEMS_SQL = """
INSERT INTO workflows_item (run_id, seq, payload, status, received_at)
SELECT %(run)s, %(first)s + t.ord - 1, t.value::jsonb, 'pending', %(now)s
FROM json_array_elements(%(payloads)s::json) WITH ORDINALITY AS t(value, ord)
RETURNING id, seq
"""
_encode_payloads = DjangoJSONEncoder(ensure_ascii=False).encode


def insert_items_pg(run_id: int, first: int, payloads: list[dict], now: Any) -> list[int]:
    """Insert items seq first, first + 1, … in chunks; their ids in seq order."""
    ids: list[int] = []
    with connection.cursor() as cursor:
        for start in range(0, len(payloads), ITEM_BATCH):
            chunk = payloads[start : start + ITEM_BATCH]
            cursor.execute(INSERT_ITEMS_SQL, {"run": run_id, "first": first + start, "now": now,
                                              "payloads": _encode_payloads(chunk)})
            ids += [pk for pk, _ in sorted(cursor.fetchall(), key=lambda row: row[1])]
    return ids


def not_published() -> StartError:
    return StartError([gettext("The workflow has no live version: publish a version first (saving makes a "
                               "draft, which runs only as a test run chosen by its number).")])


def test_version(workflow: Any, raw: Any, *, user: Any) -> Any:
    """The version a test run asks for by its number (None when none is asked: the live one). Running a
    draft is a designer's test, so it needs workflow.edit (PermissionDenied, audited, otherwise)."""
    if raw in (None, ""):
        return None
    try:
        number = int(raw)
    except (TypeError, ValueError):
        number = 0
    version = workflow.versions.filter(number=number).first() if 0 < number < 2**31 else None
    if version is None:
        raise StartError([gettext("Workflow %(workflow)s has no version %(number)s to run.")
                          % {"workflow": workflow.pk, "number": str(raw)[:20]}])
    if version.number != workflow.published:
        require(user, "workflow.edit", workflow)
    return version


def create_run(workflow: Any, *, user: Any, items: list[dict], origin: str = "upload", input_name: str = "",
               mapping: dict | None = None, live: bool = False, version: Any = None) -> Any:
    """A run of the workflow's live (published) version over `items`, shards enqueued; or a test run of
    `version`, a designer's explicit choice, marked as a draft run unless it is the live version."""
    if version is None:
        version = workflow.live
        if version is None:
            raise not_published()
    draft = version.number != workflow.published
    if draft and live:
        raise StartError([gettext("Intake runs only on the live version; publish version %(number)s first.")
                          % {"number": version.number}])
    the_plan, source, models = check_runnable(version, origin)
    if not items and not live:
        raise StartError([gettext("There are no items to run.")])
    with transaction.atomic():
        run = Run.objects.create(
            workflow=workflow, version=version, origin=origin, source_node=source, is_live=live, resolved_models=models,
            draft=draft,
            shard_size=settings.ENGINE_SHARD_SIZE, batch_size=settings.ENGINE_BATCH_SIZE, input_name=input_name[:255],
            mapping=mapping or {}, created_by=user if getattr(user, "is_authenticated", False) else None,
            status=statuses.RUNNING if live else statuses.QUEUED, started_at=timezone.now() if live else None,
        )
        NodeStats.objects.bulk_create([NodeStats(run=run, node=node_id) for node_id in the_plan.order])
        if items:
            add_items(run, items)
        if not live:
            make_shards(run, run.items_total)
        record("run.start", actor=user, obj=run, workflow=workflow.pk, version=version.number, items=len(items),
               origin=origin, draft=draft, models={ref: pin.get("ref", "") for ref, pin in models.items()})
    return run


def append_to_live_run(workflow: Any, items: list[dict], *, user: Any, origin: str = "rest") -> tuple[Any, list[int]]:
    """REST intake (or another live origin: inbound webhooks): items join the workflow's live run of that
    origin, entering by its source node (created on demand); full shards go at once, the tail when the
    monitor sees no new items for ENGINE_INTAKE_FLUSH_SECONDS. The run is of the live version: once another
    version is published, the next intake closes the old run and opens one of the new."""
    with transaction.atomic():
        locked = Workflow.objects.select_for_update().get(pk=workflow.pk)  # one live run per workflow and origin
        if locked.archived:
            raise StartError([gettext("The workflow is archived: restore it to start runs or take items.")])
        live = locked.live
        if live is None:
            raise not_published()
        run = Run.objects.filter(workflow=workflow, is_live=True, origin=origin,
                                 status__in=statuses.ACTIVE_RUN_STATUSES).first()
        if run is None or run.version_id != live.pk:
            if run is not None:
                close_live_run(run)
            run = create_run(locked, user=user, items=[], origin=origin, live=True, version=live)
        run = Run.objects.select_for_update().get(pk=run.pk)
        ids = add_items(run, items)
        full = run.sharded_upto + (run.items_total - run.sharded_upto) // run.shard_size * run.shard_size
        make_shards(run, full)
    return run, ids


def close_live_run(run: Any) -> None:
    """A new version takes over intake: the old live run takes no more items and finishes normally."""
    Run.objects.filter(pk=run.pk).update(is_live=False)
    run.is_live = False
    make_shards(run, run.items_total)


def flush_live_run(run_id: int) -> int:
    with transaction.atomic():
        run = Run.objects.select_for_update().get(pk=run_id)
        if run.sharded_upto >= run.items_total or run.status not in statuses.ACTIVE_RUN_STATUSES:
            return 0
        return make_shards(run, run.items_total)


def maybe_finish_run(run_id: int) -> str | None:
    """Give the run its final status once no shard is left, or WAITING when the items left all wait
    for people (returns the status written). Items left pending by a lost shard (never expected, but
    0 lost is the promise) get a shard of their own instead."""
    with transaction.atomic():
        run = Run.objects.select_for_update().get(pk=run_id)
        if run.status != statuses.RUNNING or run.is_live:
            return None
        if run.shards.filter(status__in=[Shard.QUEUED, Shard.RUNNING]).exists() or run.sharded_upto < run.items_total:
            return None
        pending = list(Item.objects.filter(run=run, status=Item.PENDING).values_list("id", flat=True)[:10000])
        if pending:
            logger.warning("run %s: %d items left pending after its shards; resharding them", run.pk, len(pending))
            resume_items(run, pending)
            return None
        status = state.final_status(total=run.items_total, done=run.items_done, dead=run.items_dead,
                                    parked=run.items_parked)
        if status == statuses.WAITING:
            Run.objects.filter(pk=run.pk, status=statuses.RUNNING).update(status=status)
            return status
        finished_at = timezone.now()
        Run.objects.filter(pk=run.pk, status=statuses.RUNNING).update(status=status, finished_at=finished_at)
        record("run.finish", obj=run, status=status, done=run.items_done, dead=run.items_dead)
        if status == statuses.FAILED:
            notifications.run_failed(run, finished_at)
    return status


def resume_items(run: Any, item_ids: list[int]) -> Any:
    """A shard of chosen items (their finished nodes replay from the ledger). Caller is in a transaction."""
    shard = Shard.objects.create(run=run, start_seq=0, end_seq=0, item_ids=sorted(item_ids))
    enqueue_shard(shard)
    # A finished run with dead letters or reviews runs again, and so does one waiting for its reviews;
    # a cancelled one never does.
    finished = [statuses.WAITING, statuses.SUCCEEDED, statuses.COMPLETED_WITH_ERRORS, statuses.FAILED]
    Run.objects.filter(pk=run.pk, status__in=finished).update(status=statuses.RUNNING, finished_at=None)
    return shard


def cancel_run(run: Any, *, user: Any) -> bool:
    with transaction.atomic():
        changed = Run.objects.filter(pk=run.pk, status__in=statuses.ACTIVE_RUN_STATUSES).update(
            status=statuses.CANCELLED, finished_at=timezone.now(), is_live=False)
        if changed:
            # Running shards notice at their next commit (the fence checks status=running).
            Shard.objects.filter(run=run, status__in=[Shard.QUEUED, Shard.RUNNING]).update(status=Shard.CANCELLED)
            record("run.cancel", actor=user, obj=run)
    return bool(changed)


def retry_dead_letters(run: Any, *, user: Any) -> int:
    """Send every unretried dead letter's item back through the plan from the node where it failed."""
    with transaction.atomic():
        run = Run.objects.select_for_update().get(pk=run.pk)
        if run.status == statuses.CANCELLED:
            raise StartError([gettext("A cancelled run cannot be retried; start a new run.")])
        letters = list(DeadLetter.objects.filter(run=run, retried_at__isnull=True))
        if not letters:
            return 0
        item_ids = sorted({d.item_id for d in letters})
        # The failed decisions leave the ledger (their reason stays on the dead letter) so the nodes run again.
        for d in letters:
            Decision.objects.filter(run=run, item_id=d.item_id, node=d.node, port=statuses.DEAD).delete()
        DeadLetter.objects.filter(pk__in=[d.pk for d in letters]).update(
            retried_at=timezone.now(), retried_by=user if getattr(user, "is_authenticated", False) else None)
        moved = (Item.objects.filter(run=run, id__in=item_ids, status=Item.DEAD)
                 .update(status=Item.PENDING, finished_at=None))
        Run.objects.filter(pk=run.pk).update(items_dead=F("items_dead") - moved)
        resume_items(run, item_ids)
        record("run.retry_dead_letters", actor=user, obj=run, items=len(item_ids))
    return len(item_ids)


def decide_review(task: Any, *, user: Any, result: dict[str, Any]) -> bool:
    """Record a reviewer's answer and resume the item downstream of its review node.

    `result` (the label, corrected fields, summary, answer) is merged into the item when it resumes.
    A spot check never comes here: its item was not parked and has gone on already."""
    with transaction.atomic():
        changed = ReviewTask.objects.filter(pk=task.pk, status=ReviewTask.OPEN, kind=ReviewTask.ESCALATION).update(
            status=ReviewTask.DECIDED, result={**result, "reviewed": True}, decided_by=user, decided_at=timezone.now())
        if not changed:
            return False
        run = Run.objects.select_for_update().get(pk=task.run_id)
        moved = Item.objects.filter(pk=task.item_id, status=Item.PARKED).update(status=Item.PENDING, finished_at=None)
        if moved:
            Run.objects.filter(pk=run.pk).update(items_parked=F("items_parked") - moved)
            if run.status != statuses.CANCELLED:
                resume_items(run, [task.item_id])
        record("review.decide", actor=user, obj=task, run=run.pk, item=task.item_id,
               result=review_answer_for_audit(result))
    return True
