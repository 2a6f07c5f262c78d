"""The migrations that move existing data: a database made before drafts and teams keeps running what
it ran. 0025 makes each workflow's latest version its live one (a workflow with no version has none),
0027 puts every workflow and data set in the General team. Run on the test database: migrated back to
0024, given rows as they were then, migrated forward again."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("workflows", "0024_run_origins")]


@pytest.mark.django_db(transaction=True)
def test_existing_workflows_go_live_on_their_latest_version_and_into_the_general_team():
    executor = MigrationExecutor(connection)
    latest = executor.loader.graph.leaf_nodes("workflows")
    try:
        executor.migrate(BEFORE)
        old = executor.loader.project_state(BEFORE).apps
        Workflow, Dataset = old.get_model("workflows", "Workflow"), old.get_model("workflows", "Dataset")
        running = Workflow.objects.create(name="Running", head=3)
        empty = Workflow.objects.create(name="Never saved", head=0)
        data = Dataset.objects.create(name="weekly", filename="w.csv", content=b"text\nx\n", size=7, rows=1,
                                      columns=["text"])
        executor = MigrationExecutor(connection)  # the loader as it is now, at 0024
        executor.migrate(latest)
        new = executor.loader.project_state(latest).apps
        Workflow, Dataset = new.get_model("workflows", "Workflow"), new.get_model("workflows", "Dataset")
        assert Workflow.objects.get(pk=running.pk).published == 3
        assert Workflow.objects.get(pk=empty.pk).published is None
        general = new.get_model("workflows", "Team").objects.get(name="General")
        assert {w.team_id for w in Workflow.objects.filter(pk__in=[running.pk, empty.pk])} == {general.pk}
        assert Dataset.objects.get(pk=data.pk).team_id == general.pk
    finally:
        MigrationExecutor(connection).migrate(latest)
