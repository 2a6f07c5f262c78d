from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext, ngettext

from workflows.access import restrict, team_for_new
from workflows.datasets import parse_mapping, store
from workflows.engine.intake import IntakeError
from workflows.models.datasets import Dataset, Schedule
from workflows.roles import can, require
from workflows.uploads import redirect_after_upload


@login_required
def dataset_list(request: HttpRequest) -> HttpResponse:
    require(request.user, "run.view")
    error = ""
    if request.method == "POST":
        require(request.user, "run.start")
        upload = request.FILES.get("file")
        try:
            if upload is None:
                raise IntakeError(gettext("Choose a CSV, JSONL or XLSX file."))
            team = team_for_new(request.user, request.POST.get("team"), "run.start")
            dataset = store(name=request.POST.get("name", "").strip(), filename=upload.name, data=upload.read(),
                            mapping=parse_mapping(request.POST.get("mapping")), user=request.user, team=team)
        except IntakeError as exc:
            error = exc.message
        except ValueError as exc:  # several teams and none chosen
            error = str(exc)
        else:
            messages.success(request, ngettext("Stored %(name)s: %(rows)s row.", "Stored %(name)s: %(rows)s rows.",
                                               dataset.rows) % {"name": dataset.name, "rows": dataset.rows})
            return redirect_after_upload(request, "dataset-list")
    datasets = restrict(Dataset.objects.select_related("team"), request.user, "run.view", "team")
    schedules = restrict(Schedule.objects.select_related("workflow", "last_run"), request.user, "run.view")
    context = {"datasets": datasets, "schedules": schedules,
               "can_upload": can(request.user, "run.start"), "error": error}
    return render(request, "datasets/list.html", context, status=400 if error else 200)
