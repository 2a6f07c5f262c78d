# The learning loop: classifiers made for a workflow step, spot checks beside escalations,
# field-level labels, a new classifier's first training (no parent), the label-change acknowledgement.

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("workflows", "0016_spend_budgets"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="registeredmodel",
            name="origin_workflow",
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL,
                                    related_name="learned_classifiers", to="workflows.workflow"),
        ),
        migrations.AddField(
            model_name="registeredmodel",
            name="origin_node",
            field=models.CharField(blank=True, max_length=64),
        ),
        migrations.AddField(
            model_name="registeredmodel",
            name="seed_labels",
            field=models.JSONField(blank=True, default=dict),
        ),
        migrations.AddField(
            model_name="registeredmodel",
            name="created_by",
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL,
                                    related_name="+", to=settings.AUTH_USER_MODEL),
        ),
        migrations.AddConstraint(
            model_name="registeredmodel",
            constraint=models.UniqueConstraint(condition=models.Q(("origin_node", ""), _negated=True),
                                               fields=("origin_workflow", "origin_node"),
                                               name="one_classifier_per_node"),
        ),
        migrations.AlterField(
            model_name="label",
            name="source",
            field=models.CharField(choices=[("review", "review"), ("upload", "upload"), ("spot_check", "spot check")],
                                   default="review", max_length=10),
        ),
        migrations.AddField(
            model_name="label",
            name="field",
            field=models.CharField(blank=True, default="", max_length=120),
        ),
        migrations.AddField(
            model_name="label",
            name="value",
            field=models.TextField(blank=True, default=""),
        ),
        migrations.AlterField(
            model_name="modeljob",
            name="base_version",
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT,
                                    related_name="+", to="workflows.modelversion",
                                    help_text="Training: the production version (parent; none for a new "
                                              "classifier). Optimising: the version quantised."),
        ),
        migrations.AddField(
            model_name="promotionrequest",
            name="label_change_acknowledged",
            field=models.BooleanField(default=False),
        ),
        migrations.AddField(
            model_name="reviewtask",
            name="kind",
            field=models.CharField(choices=[("escalation", "escalation"), ("spot_check", "spot check")],
                                   default="escalation", max_length=12),
        ),
    ]
