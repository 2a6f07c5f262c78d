"""The large-model client: real local llama.cpp server for completions; a local stand-in provider
(an external paid service's failure modes: 503s, slowness) for retries, budget and idempotency."""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from workflows.runtimes.llm import Budget, ChatClient, Endpoint, redact, render_prompt


class Provider(BaseHTTPRequestHandler):
    """Answers like an OpenAI-compatible provider; `script` says what each call gets."""

    script: list = []
    seen: list = []

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        Provider.seen.append({"headers": dict(self.headers), "body": body})
        status = Provider.script.pop(0) if Provider.script else 200
        if status == "slow":
            threading.Event().wait(3)
            status = 200
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        if status == 200:
            reply = {"choices": [{"message": {"content": "label: billing; confidence: 0.9"}}],
                     "usage": {"prompt_tokens": 40, "completion_tokens": 10}}
            self.wfile.write(json.dumps(reply).encode())

    def log_message(self, *args):
        pass


@pytest.fixture
def provider():
    Provider.script, Provider.seen = [], []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Provider)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()


def client(base_url: str, **kwargs) -> ChatClient:
    endpoint = Endpoint(base_url=base_url, model="m", price_in_per_1k=0.5, price_out_per_1k=1.5, location="external",
                        region="EU")
    return ChatClient(endpoint, prompt="Ticket from {customer.name}: {text}", backoff=0.01, **kwargs)


def test_prompt_reads_dotted_fields_and_leaves_missing_ones_empty():
    assert render_prompt("{customer.name}: {text} {missing}", {"text": "hi", "customer": {"name": "Ada"}}) == "Ada: hi "


def test_personal_data_is_redacted_before_it_leaves(provider):
    out = client(provider).complete({"text": "Pay to IT60X0542811101000000123456, mail mario.rossi@example.it",
                                     "customer": {"name": "x"}})
    sent = Provider.seen[0]["body"]["messages"][0]["content"]
    assert "IT60X0542811101000000123456" not in sent and "mario.rossi@example.it" not in sent
    assert "[IBAN]" in sent and "[EMAIL]" in sent
    assert sorted(out["llm"]["redacted"]) == ["email", "iban"]
    assert redact("nothing personal here")[0] == "nothing personal here"


def test_idempotency_key_tokens_and_cost_are_recorded(provider):
    out = client(provider).complete({"text": "hello"}, "7:llm:42")
    assert Provider.seen[0]["headers"]["Idempotency-Key"] == "7:llm:42"
    assert out["answer"] == "label: billing; confidence: 0.9"
    assert out["llm"]["tokens_in"] == 40 and out["llm"]["tokens_out"] == 10
    assert out["llm"]["cost_eur"] == pytest.approx(40 / 1000 * 0.5 + 10 / 1000 * 1.5)
    assert out["llm"]["region"] == "EU" and out["llm"]["location"] == "external"


def test_transient_errors_are_retried_then_succeed(provider):
    Provider.script = [503, 429]
    out = client(provider, retries=2).complete({"text": "x"}, "k")
    assert out["llm"]["attempts"] == 3 and len(Provider.seen) == 3
    assert {s["headers"]["Idempotency-Key"] for s in Provider.seen} == {"k"}  # same key on every retry


def test_a_client_error_is_not_retried(provider):
    Provider.script = [400]
    out = client(provider, retries=3).complete({"text": "x"})
    assert out["error_code"] == "llm_failed" and out["transient"] is False and len(Provider.seen) == 1


def test_unreachable_endpoint_is_a_transient_per_item_error():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the block ends: nothing listens there
    out = client(f"http://127.0.0.1:{port}/v1", retries=1).complete({"text": "x"})
    assert out["error_code"] == "llm_failed" and out["transient"] is True and "unreachable" in out["error"]


def test_slow_endpoint_times_out(provider):
    Provider.script = ["slow"]
    out = client(provider, retries=0, timeout=0.5).complete({"text": "x"})
    assert out["error_code"] == "llm_failed" and "slow" in out["error"]


@pytest.mark.parametrize("concurrency", [1, 4])
def test_budget_is_never_exceeded_even_by_concurrent_calls(provider, concurrency):
    # Each call reserves an upper bound: 15 prompt chars + 32 template + 10 max tokens = 57 tokens.
    budget = Budget(max_tokens=120, max_eur=0)
    c = client(provider, budget=budget, max_tokens=10, concurrency=concurrency)
    results = c.run([{"text": str(i), "customer": {}} for i in range(6)], list("abcdef"))
    assert len(Provider.seen) == 2  # a third reservation would pass 120
    assert [r.get("error_code") for r in results].count("budget_exhausted") == 4
    assert budget.used_tokens == 100 and budget.reserved_tokens == 0


def test_real_local_model_answers_over_the_openai_protocol(local_llm):
    c = ChatClient(Endpoint(base_url=local_llm, model="smollm2"), prompt="Say hello to {name} in one short sentence.",
                   max_tokens=24, temperature=0.0, timeout=120)
    out = c.complete({"name": "Giulia"}, "1:llm:1")
    assert out.get("error") is None, out
    assert out["answer"].strip() and out["llm"]["tokens_out"] > 0 and out["llm"]["tokens_in"] > 5
