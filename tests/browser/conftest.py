"""Browser tests: Playwright (sync API) driving Debian's chromium against pytest-django's live server.

One browser per session, a fresh context (cookies, downloads) per test. We never download a browser:
without /usr/bin/chromium the tests skip, except in CI (env CI set) where that is a failure.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

# Playwright's sync API runs an event loop in the test thread; Django's ORM refuses to run in a
# thread with a running loop unless told that this is deliberate.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "var" / "screenshots"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


# Every Content-Security-Policy violation (an inline script or style, an eval, a connection or image
# the policy refuses) is reported to the test through this listener, in every page and frame.
CSP_LISTENER = """
document.addEventListener("securitypolicyviolation", (e) => {
  const on = e.target && e.target.outerHTML ? ` on ${e.target.outerHTML.slice(0, 120)}` : "";
  window.__cspViolation(`${e.effectiveDirective} refused ${e.blockedURI || "inline"} \
at ${e.sourceFile || e.documentURI}:${e.lineNumber}` +
    (e.sample ? ` (${e.sample})` : "") + on);
}, true);
"""


def watch_csp(context, report) -> None:
    """Call report(text) for every CSP violation in the context's pages."""
    context.expose_binding("__cspViolation", lambda source, text: report(f"CSP violation: {text}"))
    context.add_init_script(CSP_LISTENER)


@pytest.fixture(scope="session")
def browser():
    executable = shutil.which("chromium")
    if not executable:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed; CI must run the browser tests (apt-get install chromium).")
        pytest.skip("chromium is not installed (apt-get install chromium); browser tests skipped.")
    from playwright.sync_api import sync_playwright

    playwright = sync_playwright().start()
    browser = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
    yield browser
    browser.close()
    playwright.stop()


@pytest.fixture
def registry(transactional_db):
    """The packaged models and the local large-model endpoint, as `setup_models` registers them."""
    from tests.builders import register_model
    from workflows.models import LLMEndpoint

    register_model("minilm", kind="embedder")
    register_model("rampart", kind="extractor")
    register_model("ocr", kind="ocr")
    LLMEndpoint.objects.create(name="local-smollm2", base_url="http://127.0.0.1:8088/v1", model_name="smollm2",
                               location=LLMEndpoint.ON_PREMISE, region="local")


@pytest.fixture
def known_problems() -> list[str]:
    """Regular expressions for console lines or CSP violations a test expects (third-party pages only)."""
    return []


def accept_dialog(dialog) -> None:
    dialog.accept()


@pytest.fixture
def page(browser, live_server, request, known_problems):
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1500, "height": 900},
                                  accept_downloads=True)
    context.set_default_timeout(10_000)
    # pytest-django's live server is WSGI: no websockets. The live-metrics sockets of the canvas and
    # run pages are answered here instead (open and silent); test_live_browser.py runs daphne.
    context.route_web_socket(re.compile(r"/ws/"), lambda ws: None)
    problems: list[str] = []
    watch_csp(context, problems.append)  # the policy is on in every browser test: any violation fails it
    page = context.new_page()
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    page.on("console", lambda msg: problems.append(f"console: {msg.text} at {msg.location}")
            if msg.type == "error" else None)
    page.on("dialog", accept_dialog)  # a test that answers a question itself removes this listener
    yield page
    failed = getattr(request.node, "rep_call", None)
    if failed is not None and failed.failed:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"FAILED-{request.node.name}.png"), full_page=True)
    context.close()
    # chromium logs every 4xx answer as a console error; the app handles those (conflicts, refusals).
    unexpected = [p for p in problems if "the server responded with a status of 4" not in p
                  and not any(re.search(known, p) for known in known_problems)]
    assert not unexpected, "\n".join(unexpected)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


@pytest.fixture
def login(page):
    from tests.builders import PASSWORD

    def log_in(user) -> None:
        page.goto("/accounts/login/")
        page.fill("input[name=username]", user.get_username())
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(lambda url: "/accounts/login/" not in url)

    return log_in


def shot(page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path))
    return path
