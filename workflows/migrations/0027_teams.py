# Written by hand: teams and memberships; every existing workflow and data set goes to the team
# "General", so nobody loses access (organisation-wide roles apply in every team).
import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

import workflows.models.teams


def general_team(apps, schema_editor):
    Team = apps.get_model("workflows", "Team")
    team, _ = Team.objects.get_or_create(name="General")
    apps.get_model("workflows", "Workflow").objects.filter(team__isnull=True).update(team=team)
    apps.get_model("workflows", "Dataset").objects.filter(team__isnull=True).update(team=team)


class Migration(migrations.Migration):
    dependencies = [
        ("workflows", "0026_artifact_store"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="Team",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("name", models.CharField(max_length=120, unique=True)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
            ],
            options={"ordering": ["name", "id"]},
        ),
        migrations.CreateModel(
            name="Membership",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("role", models.CharField(choices=[("designer", "designer"), ("trainer", "trainer"),
                                                   ("validator", "validator"), ("operator", "operator"),
                                                   ("business_owner", "business_owner")], max_length=32)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("team", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="memberships",
                                           to="workflows.team")),
                ("user", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="memberships",
                                           to=settings.AUTH_USER_MODEL)),
            ],
            options={"ordering": ["team__name", "user__username", "role"],
                     "constraints": [models.UniqueConstraint(fields=("team", "user", "role"),
                                                             name="unique_team_membership_role")]},
        ),
        migrations.AddField(
            model_name="workflow",
            name="team",
            field=models.ForeignKey(null=True, on_delete=django.db.models.deletion.PROTECT, related_name="workflows",
                                    to="workflows.team"),
        ),
        migrations.AddField(
            model_name="dataset",
            name="team",
            field=models.ForeignKey(null=True, on_delete=django.db.models.deletion.PROTECT, related_name="datasets",
                                    to="workflows.team"),
        ),
        migrations.RunPython(general_team, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="workflow",
            name="team",
            field=models.ForeignKey(default=workflows.models.teams.general_team_pk,
                                    on_delete=django.db.models.deletion.PROTECT, related_name="workflows",
                                    to="workflows.team"),
        ),
        migrations.AlterField(
            model_name="dataset",
            name="team",
            field=models.ForeignKey(default=workflows.models.teams.general_team_pk,
                                    on_delete=django.db.models.deletion.PROTECT, related_name="datasets",
                                    to="workflows.team"),
        ),
        migrations.AlterField(
            model_name="dataset",
            name="name",
            field=models.SlugField(max_length=80),
        ),
        migrations.AlterModelOptions(name="dataset", options={"ordering": ["name", "team_id"]}),
        migrations.AddConstraint(
            model_name="dataset",
            constraint=models.UniqueConstraint(fields=("team", "name"), name="unique_dataset_name_per_team"),
        ),
    ]
