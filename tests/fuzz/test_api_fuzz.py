"""The API fuzzed from its own OpenAPI schema: every operation, as every role, as a user with no role
and as nobody.

Proven for the requests schemathesis generates from /api/schema/ (valid ones and invalid ones):
no 5xx ever; every answer is documented (status code, content type, body schema, headers); an
identity whose role may not do an operation gets 403 or 404 (before its body is even read) and
nobody gets 401; a refused request (4xx) writes nothing. Bounded and reproducible: a fixed number
of examples per operation, derandomized, against a seeded world.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import time
import traceback
from collections import Counter

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import got_request_exception, request_finished, request_started
from django.db import close_old_connections, transaction
from django.urls import Resolver404, resolve
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.core.failures import FailureGroup

from tests.fuzz.graphs import near_valid_graphs, valid_graphs
from tests.fuzz.world import IDENTITIES, World, build_world, fingerprint
from workflows.roles import ROLES

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

# Examples per operation. Each positive example is sent as one identity allowed to do the operation and
# one that is not, in turn, so 8 examples reach every identity at least once.
EXAMPLES = {GenerationMode.POSITIVE: 8, GenerationMode.NEGATIVE: 3}
SETTINGS = {"deadline": None, "derandomize": True, "database": None, "phases": [Phase.explicit, Phase.generate],
            "suppress_health_check": list(HealthCheck)}
# Checks every answer must pass (schemathesis' own), on top of "no 5xx" and ours on roles.
SCHEMA_CHECKS = {"status_code_conformance", "content_type_conformance", "response_schema_conformance",
                 "response_headers_conformance"}


# Body fields worth more than random JSON: graphs that nearly validate, versions and labels that exist.
BODY = {
    "graph": st.one_of(near_valid_graphs(), valid_graphs()),
    "parent": st.integers(0, 3),
    "version": st.integers(1, 2),
    "model": st.sampled_from(["tickets", "minilm"]),
    "labelled_set": st.just("fuzz-set"),
    "label": st.sampled_from(["billing", "technical", "account"]),
    "items": st.lists(st.fixed_dictionaries({"text": st.text(min_size=1, max_size=40),
                                             "lang": st.sampled_from(["it", "en"])}),
                      min_size=1, max_size=3),
}


# Text that breaks naive code: NUL (PostgreSQL text cannot hold it), SQL LIKE wildcards, quotes, a
# right-to-left override, and a long string. Generated text seldom holds these, so they are mixed in.
HOSTILE_TEXT = (st.sampled_from(["\x00", "a\x00b"])
                | st.sampled_from(["%", "_", "'; --", "\\", "\u202e", "x" * 5000, " ", "\ufeff"]))


def allowed_roles() -> dict[tuple[str, str], set[str]]:
    """Who may do what, from the role matrix (tests/test_role_matrix.py), so that there is one table."""
    from tests import test_role_matrix as matrix
    from tests import test_role_matrix_channels as channels
    from tests import test_role_matrix_teams as teams

    table = {(row.name, row.method): set(row.allowed)
             for row in [*matrix.rows(), *matrix.run_rows(), *matrix.governance_rows(), *matrix.kpi_rows(),
                         *matrix.endpoint_rows(), *channels.notification_rows(), *channels.webhook_source_rows(),
                         *channels.mailbox_rows(), *channels.lifecycle_rows(), *teams.team_rows(),
                         *teams.publication_rows()] if row.api}
    # The matrix's KPI rows are about a designer's workflow; an operator also sees the ones they ran.
    for name in ("api-workflow-kpis", "api-kpi-what-if", "api-kpi-packs"):
        table[(name, "get")] |= matrix.KPI_VIEW
    table[("api-kpi-baseline", "get")] = set(matrix.KPI_VIEW)
    table[("api-me", "get")] = {*ROLES, "outsider"}
    table[("api-promotion-decide", "post")] |= {"designer"}  # who requested the seeded promotion, and may cancel it
    table[("api-token", "post")] = set(IDENTITIES)  # exchanging a password for a token is open to all
    return table


class Findings:
    def __init__(self, figures) -> None:
        self.figures = figures
        self.found: dict[str, list[str]] = {"server_errors": [], "schema_violations": [], "role_violations": [],
                                            "half_written": []}
        self.kinds: Counter[str] = Counter()

    def add(self, kind: str, summary: str, detail: str) -> None:
        setattr(self.figures, kind, getattr(self.figures, kind) + 1)
        self.kinds[f"{kind}: {summary}"] += 1
        if self.kinds[f"{kind}: {summary}"] == 1:
            self.found[kind].append(f"{summary}\n{detail}")

    def __bool__(self) -> bool:
        return any(self.found.values())

    def report(self) -> str:
        counts = "\n".join(f"{n:5d} × {kind}" for kind, n in self.kinds.most_common())
        examples = "\n\n".join(entry for entries in self.found.values() for entry in entries[:12])
        return f"The fuzzer found:\n{counts}\n\nOne example of each:\n{examples}"


@pytest.fixture
def wsgi_app():
    """Django's real WSGI handler; like Django's test client, it must not close the test's connection."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield WSGIHandler()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.fixture
def crashes():
    """The traceback of each unhandled exception, so that a 500 says where it came from."""
    seen: list[str] = []

    def keep(sender, request=None, **kwargs):
        seen.append("".join(traceback.format_exception(*sys.exc_info())[-8:]))

    got_request_exception.connect(keep, weak=False)
    yield seen
    got_request_exception.disconnect(keep)


@pytest.fixture
def quiet_request_log():
    """Thousands of expected 4xx would each log a warning."""
    logger = logging.getLogger("django.request")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    yield
    logger.setLevel(level)


def operation_name(path: str) -> str:
    return resolve(re.sub(r"\{[^}]+\}", "1", path)).url_name


def real_values(world: World, path: str, names: list[str]) -> dict[str, list]:
    """Seeded objects for the operation's parameters: `id` by the route it belongs to, the rest by name."""
    found = {}
    for name in names:
        key = re.match(r"^/api/[a-z-]+/\{id\}", path).group(0) if name == "id" else name
        if key in world.ids:
            found[name] = world.ids[key]
    return found


def test_every_operation_as_every_role(personas, wsgi_app, crashes, quiet_request_log, fuzz_figures, settings,
                                       tmp_path):
    from schemathesis.checks import CHECKS, load_all_checks

    load_all_checks()
    checks = [c for c in CHECKS.get_all() if c.__name__ in SCHEMA_CHECKS]
    schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", wsgi_app, config=schemathesis.Config())
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 50, "the schema lost operations"
    if os.environ.get("CF_FUZZ_OPERATIONS"):  # e.g. "GET /api/runs" while working on one endpoint
        operations = [op for op in operations if re.search(os.environ["CF_FUZZ_OPERATIONS"], op.label)]
    settings.ARTIFACTS_DIR = tmp_path / "artifacts"  # imported models land here, not in var/
    # The token endpoint counts failed logins in the cache (Redis in CI): the fuzzer's thousand wrong
    # passwords must not lock later tests out.
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "fuzz"}}
    world = build_world(personas)
    seeded = fingerprint()
    table = allowed_roles()
    findings = Findings(fuzz_figures)

    def allowed_somewhere(name: str, method: str) -> bool:
        return bool(table[(name, method)]) and name != "api-token"

    def send(case, identity: str, mode: GenerationMode) -> None:
        name, method = operation_name(case.operation.path), case.method.lower()
        allowed = table.get((name, method))
        assert allowed is not None, f"{name} {method}: add it to the role matrix"
        try:
            resolve(case.formatted_path)
        except Resolver404:
            allowed = set()  # a path the URL patterns refuse (a word for an id) reaches no view: 404 for everyone
        crashes.clear()
        what = f"{case.method} {case.operation.path}"
        fuzz_figures.requests += 1
        fuzz_figures.identities.add(identity)
        with transaction.atomic():  # every request starts from the seeded world
            try:
                response = case.call(headers=world.headers(identity))
            except Exception as exc:  # raised while the body streamed out, after a 200 was sent: a truncated download
                findings.add("server_errors", f"{what} → failed mid-response", f"as {identity} ({mode.value}): "
                             f"{case.as_curl_command()}\n{''.join(traceback.format_exception(exc)[-4:])}")
                transaction.set_rollback(True)
                return
            half_written = 400 <= response.status_code < 500 and fingerprint() != seeded
            transaction.set_rollback(True)
        detail = (f"as {identity} ({mode.value}): {case.as_curl_command()}\n"
                  f"→ {response.status_code} {response.text[:300]}")
        if response.status_code >= 500:
            findings.add("server_errors", f"{what} → {response.status_code}", f"{detail}\n{''.join(crashes[-1:])}")
            return
        if half_written:
            findings.add("half_written", f"{what} → {response.status_code}: refused, yet something was written", detail)
        if identity not in allowed and allowed_somewhere(name, method) and response.status_code not in (401, 403, 404):
            # Authorise before parsing: a refused role learns nothing from a 400 about its body either.
            findings.add("role_violations",
                         f"{what} → {response.status_code}: this identity may not, 401/403/404 expected", detail)
        if identity == "anonymous" and allowed and name != "api-token" and response.status_code != 401:
            findings.add("role_violations", f"{what} → {response.status_code}: anonymous must get 401", detail)
        try:
            case.validate_response(response, checks=checks)
        except FailureGroup as group:
            for failure in group.exceptions:
                findings.add("schema_violations", f"{what} → {response.status_code}: {failure.title}",
                             f"{detail}\n{failure.message[:600]}")

    def fuzz(operation, mode: GenerationMode, count: int, real: dict[str, list], texts: list[str], allowed: list[str],
             refused: list[str]) -> None:
        turn = iter(range(10**6))
        sent: set[str] = set()
        last: list = []

        @hypothesis_settings(max_examples=count, **SETTINGS)
        @given(case=operation.as_strategy(generation_mode=mode), data=st.data())
        def run(case, data):
            for key, values in real.items():  # sometimes a real object instead of a generated value
                where = case.path_parameters if key in (case.path_parameters or {}) else case.query
                if where is not None and key in where and data.draw(st.booleans()):
                    where[key] = data.draw(st.sampled_from(values))
            for key in texts:  # and text that breaks naive code
                if case.query is not None and data.draw(st.integers(0, 3)) == 0:
                    case.query[key] = data.draw(HOSTILE_TEXT)
            if isinstance(case.body, dict):  # and a body that gets past the first checks
                for key, strategy in BODY.items():
                    if key in case.body and data.draw(st.booleans()):
                        case.body[key] = data.draw(strategy)
            k = next(turn)
            for group in (allowed, refused):
                if group:
                    send(case, group[k % len(group)], mode)
                    sent.add(group[k % len(group)])
            last[:] = [case]

        try:
            run()
        except Unsatisfiable:
            assert mode == GenerationMode.NEGATIVE, operation.label  # nothing of this operation can be made invalid
        if mode == GenerationMode.POSITIVE:
            for identity in set(IDENTITIES) - sent:  # few distinct inputs (no parameters): still every identity
                send(last[0], identity, mode)

    for operation in operations:
        started = time.monotonic()
        fuzz_figures.operations.add(operation.label)
        names = [p.name for p in operation.path_parameters] + [p.name for p in operation.query]
        real = real_values(world, operation.path, names)
        texts = [p.name for p in operation.query if p.definition.get("schema", {}).get("type") == "string"]
        may = table.get((operation_name(operation.path), operation.method.lower()), set())
        allowed = [who for who in IDENTITIES if who in may]
        refused = [who for who in IDENTITIES if who not in may]
        for mode, count in EXAMPLES.items():
            fuzz(operation, mode, count, real, texts, allowed, refused)
        fuzz_figures.slowest[operation.label] = time.monotonic() - started

    assert not findings, findings.report()
