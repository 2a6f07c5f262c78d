"""KPI pages and API: role rules, baseline validation, pack signing (audited, immutable), CSV."""

from __future__ import annotations

import csv
import io

import pytest
from django.test import Client

from tests.builders import ledger_run, make_baseline, make_user, make_workflow
from tests.kpi import ledger
from workflows.access import kpi_workflows
from workflows.kpi import pack as kpi_pack
from workflows.kpi import readers as kpis
from workflows.models import AuditEntry, Baseline, WeeklyPack
from workflows.models.kpi import SignedPackError

pytestmark = pytest.mark.django_db


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def world(personas):
    """Designer's workflow with the fixed ledger; a second designer's and an operator-run workflow."""
    mine = make_workflow(personas["designer"], name="Mine")
    ledger.build(mine, personas["designer"])
    other_designer = make_user("designer2", "designer")
    theirs = make_workflow(other_designer, name="Theirs")
    ran = make_workflow(other_designer, name="Ran by operator")
    ledger_run(ran, personas["operator"])
    return {"mine": mine, "theirs": theirs, "ran": ran}


def test_business_owners_and_admins_see_all_designers_and_operators_their_own(personas, world):
    names = lambda who: set(kpi_workflows(personas[who]).values_list("name", flat=True))  # noqa: E731
    everything = {"Mine", "Theirs", "Ran by operator"}
    assert names("business_owner") == everything and names("admin") == everything
    assert names("designer") == {"Mine"}
    assert names("operator") == {"Ran by operator"}
    assert names("trainer") == set() and names("validator") == set() and names("outsider") == set()


def test_dashboard_of_someone_elses_workflow_is_refused_and_audited(personas, world):
    response = client_for(personas["designer"]).get(f"/workflows/{world['theirs'].pk}/kpis/")
    assert response.status_code == 403
    entry = AuditEntry.objects.filter(action="access.denied").latest("id")
    assert entry.data["capability"] == "kpi.view" and entry.object_id == str(world["theirs"].pk)
    assert client_for(personas["business_owner"]).get(f"/workflows/{world['theirs'].pk}/kpis/").status_code == 200
    assert client_for(personas["trainer"]).get("/kpis/").status_code == 403


def test_overview_lists_only_visible_workflows(personas, world):
    page = client_for(personas["designer"]).get("/kpis/").content.decode()
    assert "Mine" in page and "Theirs" not in page
    data = client_for(personas["operator"]).get("/api/kpis/").json()
    assert [w["name"] for w in data["workflows"]] == ["Ran by operator"]


def test_dashboard_shows_the_headline_numbers(personas, world):
    make_baseline(world["mine"])
    url = f"/workflows/{world['mine'].pk}/kpis/?week=2025-W13"
    page = client_for(personas["business_owner"]).get(url).content.decode()
    assert "62.5 %" in page  # automation 5/8
    assert "2.5 h" in page  # median cycle time
    assert "€ 20.94" in page  # savings 24 − 3 − 0.06 − compute
    assert 'id="kpi-trend"' in page and 'id="kpi-whatif"' in page and "uPlot.iife.min.js" in page


def test_baseline_is_validated_and_audited(personas, world):
    url = f"/workflows/{world['mine'].pk}/kpis/baseline/"
    good = {"manual_minutes": "6", "hourly_cost": "30", "manual_accuracy": "95", "sla_hours": "24",
            "review_minutes": "2", "compute_eur_per_cpu_hour": "0.1", "grid_g_co2_per_kwh": "300",
            "watts_per_core": "20"}
    owner = client_for(personas["business_owner"])
    bad = owner.post(url, {**good, "manual_accuracy": "140", "manual_minutes": "-3"})
    assert bad.status_code == 400 and not Baseline.objects.exists()
    assert owner.post(url, good).status_code == 302
    baseline = Baseline.objects.get(workflow=world["mine"])
    assert baseline.as_dict()["manual_minutes"] == 6.0 and baseline.large_model_eur_per_1k_tokens is None
    assert AuditEntry.objects.filter(action="kpi.baseline", actor=personas["business_owner"]).exists()
    assert client_for(personas["designer"]).post(url, good).status_code == 403
    api = client_for(personas["admin"])
    response = api.put(f"/api/workflows/{world['mine'].pk}/kpis/baseline/", {**good, "sla_hours": "0"},
                       content_type="application/json")
    assert response.status_code == 400


def test_business_owner_signs_a_pack_once_and_it_never_changes(personas, world):
    make_baseline(world["mine"])
    owner = client_for(personas["business_owner"])
    url = f"/workflows/{world['mine'].pk}/kpis/packs/2025-W13/"
    assert client_for(personas["designer"]).post(url + "sign/").status_code == 403
    assert client_for(personas["admin"]).post(url + "sign/").status_code == 403  # signing is the business owner's
    assert owner.post(url + "sign/", {"note": "fine"}).status_code == 302
    pack = WeeklyPack.objects.get(workflow=world["mine"])
    assert (pack.iso_year, pack.iso_week, pack.signed_by) == (2025, 13, personas["business_owner"]) and pack.intact
    assert pack.content["documents"]["completed"] == 8
    entry = AuditEntry.objects.filter(action="kpi.pack.sign").get()
    assert entry.data["sha256"] == pack.sha256 and entry.data["week"] == "2025-W13"
    # A second signature is refused; the stored pack cannot be saved or deleted.
    owner.post(url + "sign/")
    assert WeeklyPack.objects.count() == 1
    with pytest.raises(SignedPackError):
        pack.note = "changed"
        pack.save()
    with pytest.raises(SignedPackError):
        pack.delete()
    # The archived pack keeps what was signed even when the baseline changes afterwards.
    Baseline.objects.filter(workflow=world["mine"]).update(hourly_cost=1000)
    page = owner.get(url).content.decode()
    assert "Signed" in page and "€ 20.94" in page
    assert "2025-W13" in owner.get(f"/workflows/{world['mine'].pk}/kpis/packs/").content.decode()


def test_signing_an_unfinished_week_needs_confirmation(personas, world):
    from workflows.kpi.isoweeks import current_week, week_label

    this_week = week_label(current_week())
    owner = client_for(personas["business_owner"])
    url = f"/workflows/{world['mine'].pk}/kpis/packs/{this_week}/sign/"
    owner.post(url)
    assert not WeeklyPack.objects.exists()
    owner.post(url, {"partial": "yes"})
    assert WeeklyPack.objects.get().partial_week is True


def test_pack_csv_neutralises_formulas(personas, world):
    world["mine"].name = '=HYPERLINK("http://evil.example","x")'
    world["mine"].save()
    make_baseline(world["mine"])
    response = client_for(personas["business_owner"]).get(f"/workflows/{world['mine'].pk}/kpis/packs/2025-W13/pack.csv")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    cells = [cell for row in rows for cell in row]
    assert "'=HYPERLINK(\"http://evil.example\",\"x\")" in cells
    assert not any(cell.startswith(("=", "+", "@")) for cell in cells)
    assert ["headline", "Documents completed", "8", "count"] in rows


def test_neutralise_cells_in_rows():
    content_rows = [["a", "+1", "-2", "@x", "\tcmd", "plain", 3.5]]
    from workflows.exports import safe_cell

    assert [safe_cell(c) for c in content_rows[0]] == ["a", "'+1", "'-2", "'@x", "'\tcmd", "plain", 3.5]


def test_api_numbers_and_what_if(personas, world, api):
    make_baseline(world["mine"])
    client = api(personas["designer"])
    data = client.get(f"/api/workflows/{world['mine'].pk}/kpis/?week=2025-W13").json()
    assert data["summary"]["automation"]["rate"] == pytest.approx(5 / 8)
    wi = client.get(f"/api/workflows/{world['mine'].pk}/kpis/what-if/?week=2025-W13&node=cas&threshold=0.5").json()
    assert wi["small"] == 6
    assert client.get(f"/api/workflows/{world['mine'].pk}/kpis/?week=bogus").status_code == 400
    assert api(personas["designer"]).get(f"/api/workflows/{world['theirs'].pk}/kpis/").status_code == 403


def test_pack_content_lists_promotions_and_risks(personas, world):
    from django.utils import timezone

    from tests.builders import register_model
    from workflows.kpi.isoweeks import current_week
    from workflows.models.registry import PromotionRequest

    make_baseline(world["mine"])
    # Approved promotion requests of the models the workflow uses, in the week they were approved.
    for name in ("tickets", "unrelated"):
        v1 = register_model(name)
        v2 = register_model(name, sha=f"{name}-v2".ljust(64, "0"), alias="")
        PromotionRequest.objects.create(version=v2, alias="production", reason="better",
                                        requested_by=personas["trainer"], status=PromotionRequest.APPROVED,
                                        decided_by=personas["validator"], decided_at=timezone.now(),
                                        previous_version=v1)
    assert [(p["version"], p["previous"]) for p in kpis.promotions(world["mine"], current_week())] == [
        ("tickets:v2", "tickets:v1")]
    assert kpis.promotions(world["mine"], ledger.W13) == []
    content = kpi_pack.build(world["mine"], ledger.W13)
    assert any("SLA" in r for r in content["risks"]) and any("No spot checks" in r for r in content["risks"])
