"""Creating a workflow and saving, restoring and changing its versions: the one write path that the
canvas API, the pages, the gallery and the drift actions all use.

Every save validates the graph against the registry (the version records its problems) and writes its
audit entry, in the transaction that appends the version. A save makes a draft: runs, intake and
schedules keep using the live version until a version is published (design/publishing.py), except a
new workflow's first version, which goes live at once when it can run. The conditional UPDATE that
refuses a save built on an older version is `Workflow.append_version`'s.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction

from workflows.design.publishing import publish_if_runnable
from workflows.design.references import graph_resolvers, unapproved_pins
from workflows.graph import Graph, validate
from workflows.models import Workflow, WorkflowVersion
from workflows.models.audit import record


def save_version(workflow: Workflow, graph: Graph, *, user: Any, parent: int | None, message: str = "",
                 restored_from: int | None = None, action: str = "workflow.version.save",
                 **audit: Any) -> WorkflowVersion:
    """Append a version on top of `parent` (the version the editor started from) and audit it as
    `action` with `audit` beside the version's number, checksum and runnability.

    Raises VersionConflict when `parent` is no longer the latest version.
    """
    problems = validate(graph, **graph_resolvers()) + unapproved_pins(graph)
    with transaction.atomic():
        version = workflow.append_version(graph, author=user, parent=parent, message=message, problems=problems,
                                          restored_from=restored_from)
        record(action, actor=user, obj=workflow, version=version.number, checksum=version.checksum,
               runnable=version.is_runnable, **audit)
    return version


def create_workflow(*, name: str, description: str, graph: Graph | None = None, user: Any, message: str,
                    template: str = "", team: Any = None) -> tuple[Workflow, WorkflowVersion]:
    """A new workflow with its first version (an empty graph when none is given), live when it can run;
    in `team` (access.team_for_new chose it), else the General team."""
    with transaction.atomic():
        workflow = Workflow.objects.create(name=name, description=description, created_by=user, template=template,
                                           **({"team": team} if team is not None else {}))
        version = save_version(workflow, graph or Graph(), user=user, parent=0, message=message,
                               action="workflow.create")
        publish_if_runnable(workflow, version, user=user)
    return workflow, version


def import_workflow(*, name: str, description: str, graph: Graph, user: Any,
                    team: Any = None) -> tuple[Workflow, WorkflowVersion]:
    """A new workflow from an export document already read by design.exchange.ImportSerializer."""
    with transaction.atomic():
        workflow, version = create_workflow(name=name, description=description, graph=graph, user=user,
                                            message="Imported", team=team)
        record("workflow.import", actor=user, obj=workflow, checksum=version.checksum)
    return workflow, version


def restore_version(workflow: Workflow, old: WorkflowVersion, *, user: Any, parent: int | None,
                    message: str = "") -> WorkflowVersion:
    """An earlier version's graph saved again as the new latest version (a draft, like any save)."""
    return save_version(workflow, old.as_graph(), user=user, parent=parent,
                        message=message or f"Restored version {old.number}", restored_from=old.number,
                        action="workflow.version.restore")


def update_workflow(workflow: Workflow, *, user: Any, **changes: Any) -> Workflow:
    """Rename or describe a workflow (its versions are untouched)."""
    for key, value in changes.items():
        setattr(workflow, key, value)
    with transaction.atomic():
        workflow.save(update_fields=list(changes) or None)
        record("workflow.update", actor=user, obj=workflow, **changes)
    return workflow
