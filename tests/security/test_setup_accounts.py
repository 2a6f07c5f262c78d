"""Production set-up creates no account with a published password; the first administrator's
password comes from the environment (or `createsuperuser`), never from the code."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.django_db


def test_the_production_setup_step_seeds_role_groups_but_no_demo_user():
    planned = subprocess.run(["make", "-n", "setup"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    seeds = [line for line in planned.splitlines() if "seed_demo" in line]
    assert seeds and all("--groups-only" in line for line in seeds), seeds


def test_make_run_still_seeds_the_demo_users():
    planned = subprocess.run(["make", "-n", "run"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert any("seed_demo" in line and "--groups-only" not in line for line in planned.splitlines()), planned


@override_settings(DEBUG=False)
def test_seed_demo_refuses_demo_users_when_debug_is_off():
    with pytest.raises(CommandError, match="createsuperuser"):
        call_command("seed_demo")
    assert not get_user_model().objects.exists()
    call_command("seed_demo", "--groups-only")  # the role groups are what production needs
    assert not get_user_model().objects.exists()


def test_create_admin_takes_the_password_from_the_environment(monkeypatch):
    monkeypatch.setenv("DJANGO_SUPERUSER_USERNAME", "chief")
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "a-long-secret-from-the-vault")
    call_command("create_admin")
    call_command("create_admin")  # idempotent: set-up may run again
    admin = get_user_model().objects.get(username="chief")
    assert admin.is_superuser and admin.is_staff and admin.check_password("a-long-secret-from-the-vault")
    assert admin.groups.filter(name="admin").exists()


def test_create_admin_without_a_password_says_how_to_give_one(monkeypatch):
    monkeypatch.delenv("DJANGO_SUPERUSER_PASSWORD", raising=False)
    with pytest.raises(CommandError, match="DJANGO_SUPERUSER_PASSWORD"):
        call_command("create_admin")
    assert not get_user_model().objects.exists()
