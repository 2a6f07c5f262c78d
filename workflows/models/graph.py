"""Workflows and their immutable versions."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import IntegrityError, models, transaction
from django.db.models import F
from django.utils.translation import gettext_lazy

from workflows.graph import Graph, checksum, errors

from .immutable import ImmutableModel
from .teams import Team, general_team_pk


class VersionConflict(Exception):
    """Someone saved a newer version than the one the edit started from."""

    def __init__(self, latest: WorkflowVersion):
        self.latest = latest
        super().__init__(
            f"Version {latest.number} was saved by {latest.author_name} at {latest.created_at:%Y-%m-%d %H:%M}"
            " after the version you edited. Reload it, or save your graph as a copy."
        )


class WorkflowQuerySet(models.QuerySet):
    def listed(self) -> WorkflowQuerySet:
        """Workflows that are not archived, each with its latest version fetched in one extra query
        (lists and serializers read `latest` per row)."""
        heads = WorkflowVersion.objects.filter(number=models.F("workflow__head")).select_related("author", "parent")
        return self.filter(archived=False).select_related("created_by", "team").prefetch_related(
            models.Prefetch("versions", queryset=heads, to_attr="head_versions"))


class Workflow(models.Model):
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    # Who may touch it: group roles everywhere, team roles here (workflows/roles.py: roles_on).
    team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="workflows", default=general_team_pk)
    # The number of the latest version; moved only by a conditional UPDATE, which is what refuses
    # a save built on an older version (never last-save-wins).
    head = models.PositiveIntegerField(default=0)
    template = models.SlugField(blank=True, help_text="The gallery template this workflow was created from.")
    # Archived: hidden from lists, takes no new runs or intake, fires no schedule; reversible
    # (workflows/lifecycle/archive.py). `archived` is what lists filter on; `archived_at` says since when.
    archived = models.BooleanField(default=False)
    archived_at = models.DateTimeField(null=True, blank=True)
    # Retention: documents and what was made from them are purged this many days after they finished
    # (NULL: kept); the monitor duty claims a workflow by moving `retention_checked_at`
    # (workflows/lifecycle/retention.py). KPI weeks up to `purged_before` are frozen: their ledger is gone.
    retention_days = models.PositiveIntegerField(null=True, blank=True)
    retention_checked_at = models.DateTimeField(null=True, blank=True)
    purged_before = models.DateTimeField(null=True, blank=True)
    # Data residency: whether large-model nodes may call endpoints outside the firm, and whether
    # personal data must be redacted before any text leaves (enforced by the large-model nodes).
    allow_external_endpoints = models.BooleanField(default=False)
    require_redaction = models.BooleanField(default=True)
    # The live version: the one runs, intake, schedules and channels use (NULL: none yet, so intake is
    # refused). Saving makes a draft and never moves this; only publishing a runnable version does
    # (workflows/design/publishing.py), so a half-finished or unreviewed edit never goes live.
    published = models.PositiveIntegerField(null=True, blank=True)
    # Four eyes for workflow changes: publishing files a request that a second person decides. A
    # policy, so only administrators change it (capability workflow.policy).
    publish_needs_approval = models.BooleanField(default=False)

    objects = WorkflowQuerySet.as_manager()

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name

    @property
    def latest(self) -> WorkflowVersion | None:
        if "head_versions" in self.__dict__:  # prefetched by Workflow.objects.listed()
            return self.head_versions[0] if self.head_versions else None
        return self.versions.filter(number=self.head).first() if self.head else None

    @property
    def live(self) -> WorkflowVersion | None:
        """The published version (what runs use), or None when nothing is published yet."""
        return self.versions.filter(number=self.published).first() if self.published else None

    def append_version(self, graph: Graph, *, author: Any, parent: int | None, message: str, problems: list,
                       restored_from: int | None = None) -> WorkflowVersion:
        """Append a version on top of `parent` by moving `head` with a conditional UPDATE: a save
        built on an older version moves nothing and is refused (never last-save-wins). Validation,
        schedules and the audit entry are design.versions.save_version's, the one caller.

        Raises VersionConflict when `parent` is no longer the latest version.
        """
        expected = parent if parent is not None else 0
        graph_json = graph.to_json()
        try:
            with transaction.atomic():
                moved = Workflow.objects.filter(pk=self.pk, head=expected).update(head=F("head") + 1)
                if moved != 1:
                    raise VersionConflict(self.versions.order_by("-number").first())
                version = WorkflowVersion.objects.create(
                    workflow=self,
                    number=expected + 1,
                    parent=self.versions.filter(number=expected).first() if expected else None,
                    graph=graph_json,
                    checksum=checksum(graph_json),
                    author=author if getattr(author, "is_authenticated", False) else None,
                    message=message[:500],
                    problems=[p.to_json() for p in problems],
                    is_runnable=not errors(problems),
                    restored_from=restored_from,
                )
        except IntegrityError:
            raise VersionConflict(self.versions.order_by("-number").first()) from None
        self.head = version.number
        return version


class WorkflowVersion(ImmutableModel):
    change_refused = "A workflow version is immutable; save a new version instead."
    delete_refused = "A workflow version is immutable and cannot be deleted."

    workflow = models.ForeignKey(Workflow, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="children")
    graph = models.JSONField()
    checksum = models.CharField(max_length=64)
    author = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    message = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    problems = models.JSONField(default=list)
    is_runnable = models.BooleanField(default=False)
    restored_from = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["workflow", "-number"]
        constraints = [models.UniqueConstraint(fields=["workflow", "number"], name="unique_version_number")]

    def __str__(self) -> str:
        return f"{self.workflow} v{self.number}"

    @property
    def author_name(self) -> str:
        return self.author.get_username() if self.author else "someone"

    def as_graph(self) -> Graph:
        return Graph.from_json(self.graph, max_nodes=10**6)


class PublishRequest(models.Model):
    """A request to make a draft the live version of a workflow that needs a second person to publish
    (Workflow.publish_needs_approval). At most one is open per workflow; deciding it is
    design/publishing.py's, under the four-eyes rule (workflows/four_eyes.py)."""

    OPEN = "open"
    APPROVED = "approved"
    REJECTED = "rejected"
    CANCELLED = "cancelled"
    DECISIONS = [(OPEN, gettext_lazy("waiting for a decision")), (APPROVED, gettext_lazy("approved")),
                 (REJECTED, gettext_lazy("rejected")), (CANCELLED, gettext_lazy("cancelled"))]

    workflow = models.ForeignKey(Workflow, on_delete=models.CASCADE, related_name="publish_requests")
    version = models.ForeignKey(WorkflowVersion, on_delete=models.CASCADE, related_name="publish_requests")
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL,
                                     related_name="+")
    requested_at = models.DateTimeField(auto_now_add=True)
    reason = models.TextField(blank=True)
    decision = models.CharField(max_length=16, choices=DECISIONS, default=OPEN)
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_reason = models.TextField(blank=True)
    # The live version number when the request was decided: what an approval replaced.
    previous = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-requested_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["workflow"], condition=models.Q(decision="open"),
                                               name="one_open_publish_request")]

    def __str__(self) -> str:
        return f"publish {self.version} ({self.decision})"

    @property
    def is_open(self) -> bool:
        return self.decision == self.OPEN
