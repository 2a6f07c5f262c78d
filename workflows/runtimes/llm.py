"""The larger model, on consumption: OpenAI-compatible chat completions behind a budget.

Pure Python (urllib): the same code talks to llama.cpp's server on loopback, vLLM, Ollama or an EU
provider. Per item: a prompt from the item's fields, an idempotency key (run:node:item) so a retried
shard never pays twice at a provider that honours it, retries with backoff for transient failures
only, and tokens and spend recorded. Personal data can be redacted before any text leaves. A model
whose languages are declared is never sent text in another one: that item comes back refused
(`language_unsupported`) before anything is reserved or sent, for the node to hand to a person.
"""

from __future__ import annotations

import json
import random
import string
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from .base import Item, Output, item_error
from .language import NAMES, language_of
from .patterns import find_patterns

TRANSIENT_HTTP = {408, 409, 425, 429, 500, 502, 503, 504}
TEMPLATE_TOKENS = 32  # chat-template tokens around the messages: generous upper bound
REDACT_KINDS = ("email", "phone", "iban", "vat", "codice_fiscale", "url")


class BudgetExceeded(Exception):
    pass


@dataclass
class Budget:
    """Tokens and euros a run may still spend on one node; shared by the node's threads.

    Each call first reserves an upper bound of what it can cost (every prompt character as a token,
    plus the chat template, plus max_tokens), so concurrent calls can never overshoot the budget;
    the reservation is replaced by the real usage when the reply arrives.
    """

    max_tokens: int
    max_eur: float
    used_tokens: int = 0
    used_eur: float = 0.0
    reserved_tokens: int = 0
    reserved_eur: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def reserve(self, tokens: int, eur: float) -> None:
        with self.lock:
            if self.max_tokens and self.used_tokens + self.reserved_tokens + tokens > self.max_tokens:
                raise BudgetExceeded(f"the token budget of {self.max_tokens} would be exceeded "
                                     f"({self.used_tokens} used)")
            if self.max_eur and self.used_eur + self.reserved_eur + eur > self.max_eur:
                raise BudgetExceeded(f"the budget of €{self.max_eur:.2f} would be exceeded (€{self.used_eur:.4f} used)")
            self.reserved_tokens += tokens
            self.reserved_eur += eur

    def settle(self, reserved: tuple[int, float], tokens: int, eur: float) -> None:
        with self.lock:
            self.reserved_tokens -= reserved[0]
            self.reserved_eur -= reserved[1]
            self.used_tokens += tokens
            self.used_eur += eur


class _ItemFormatter(string.Formatter):
    """Reads dotted item fields ('fields.iban', 'customer.name'); a missing field renders empty.
    Attribute access and indexing are never performed, so a template cannot reach into objects."""

    def get_field(self, field_name: str, args: Any, kwargs: Any) -> tuple[Any, str]:
        value: Any = kwargs["item"]
        for part in field_name.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if isinstance(value, list | dict):
            value = json.dumps(value, ensure_ascii=False)
        return ("" if value is None else value), field_name


def render_prompt(template: str, item: Item) -> str:
    return _ItemFormatter().vformat(template, (), {"item": item})


def prompt_text(template: str, item: Item) -> str:
    """The item's own words in a prompt: the fields the template names, without the template's text
    (an English instruction around an Italian ticket must not make the ticket look English)."""
    names = dict.fromkeys(name for _, name, _, _ in string.Formatter().parse(template) if name)
    return "\n".join(render_prompt("{" + name + "}", item) for name in names)


def redact(text: str, extractor: Any = None) -> tuple[str, list[str]]:
    """Replace personal data with [KIND] placeholders. Patterns always; the NER model when given."""
    spans = [(s.start, s.end, s.kind) for s in find_patterns(text, list(REDACT_KINDS))]
    if extractor is not None:
        for field_name, found in (extractor.run([{"text": text}])[0].get("fields") or {}).items():
            for span in found:
                # Personal data by kind, whoever found it (the NER model or the Italian gazetteers);
                # the strictly formatted kinds (IBAN, e-mail, …) come from the patterns above.
                if field_name in ("person", "address", "bank_account", "id_number"):
                    spans.append((span["start"], span["end"], field_name))
    spans.sort()
    out, kinds, cursor = [], [], 0
    for start, end, kind in spans:
        if start < cursor:
            continue  # overlapping span already replaced
        out.append(text[cursor:start])
        out.append(f"[{kind.upper()}]")
        kinds.append(kind)
        cursor = end
    out.append(text[cursor:])
    return "".join(out), kinds


@dataclass
class Endpoint:
    base_url: str
    model: str
    api_key: str = ""
    price_in_per_1k: float = 0.0
    price_out_per_1k: float = 0.0
    location: str = "on_premise"
    region: str = ""


class ChatClient:
    """One node's client: prompt template, limits, retries, budget, concurrency."""

    def __init__(self, endpoint: Endpoint, *, prompt: str, output_field: str = "answer", max_tokens: int = 256,
                 temperature: float = 0.2, timeout: float = 30.0, retries: int = 2, backoff: float = 0.5,
                 concurrency: int = 2, budget: Budget | None = None, redact_personal_data: bool = True,
                 extractor: Any = None, system: str = "", languages: frozenset[str] | None = None):
        self.endpoint = endpoint
        self.prompt = prompt
        self.output_field = output_field
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.concurrency = max(1, concurrency)
        self.budget = budget or Budget(0, 0.0)
        self.redact_personal_data = redact_personal_data
        self.extractor = extractor
        self.system = system
        self.languages = languages  # None: not declared, every item is sent

    def run(self, batch: list[Item], keys: list[str] | None = None) -> list[Output]:
        keys = keys or [""] * len(batch)
        if len(batch) <= 1 or self.concurrency == 1:
            return [self.complete(item, key) for item, key in zip(batch, keys, strict=True)]
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(batch))) as pool:
            return list(pool.map(self.complete, batch, keys))

    def unwritten_language(self, item: Item) -> str:
        """The first language of the item's text that the model does not write; "" when it writes
        them all, when the text's language is undetermined, or when no languages are declared."""
        if self.languages is None:
            return ""
        found = language_of(item, prompt_text(self.prompt, item))
        return next((code for code in found.languages if code not in self.languages), "")

    def complete(self, item: Item, idempotency_key: str = "") -> Output:
        started = time.perf_counter()
        language = self.unwritten_language(item)
        if language:
            message = f"the model '{self.endpoint.model}' does not write {NAMES.get(language, language)}; not sent"
            return {**item_error("language_unsupported", message), "transient": False, "language": language}
        prompt = render_prompt(self.prompt, item)
        redacted: list[str] = []
        if self.redact_personal_data:
            prompt, redacted = redact(prompt, self.extractor)
        bound_in = len(prompt) + len(self.system) + TEMPLATE_TOKENS
        reservation = [bound_in + self.max_tokens, self._eur(bound_in, self.max_tokens)]
        try:
            self.budget.reserve(*reservation)
        except BudgetExceeded as exc:
            return {**item_error("budget_exhausted", f"not sent: {exc}"), "transient": False}
        try:
            return self._call(item, prompt, redacted, idempotency_key, started, reservation)
        finally:
            if reservation[0] or reservation[1]:
                self.budget.settle((reservation[0], reservation[1]), 0, 0.0)  # a failed call costs nothing

    def _eur(self, tokens_in: int, tokens_out: int) -> float:
        return tokens_in / 1000 * self.endpoint.price_in_per_1k + tokens_out / 1000 * self.endpoint.price_out_per_1k

    def _call(self, item: Item, prompt: str, redacted: list[str], idempotency_key: str, started: float,
              reservation: list) -> Output:
        messages = (([{"role": "system", "content": self.system}] if self.system else [])
                    + [{"role": "user", "content": prompt}])
        body = {"model": self.endpoint.model, "messages": messages, "max_tokens": self.max_tokens,
                "temperature": self.temperature}
        last_error = "no attempt made"
        transient = True
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff * (2 ** (attempt - 1)) * (1 + random.random() / 4))
            try:
                reply = self._post(body, idempotency_key)
            except urllib.error.HTTPError as exc:
                last_error = f"HTTP {exc.code} from {self.endpoint.base_url}"
                transient = exc.code in TRANSIENT_HTTP
                if not transient:
                    break
                continue
            except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as exc:
                reason = getattr(exc, "reason", exc)
                last_error = f"endpoint unreachable or slow ({reason})"
                continue
            except ValueError as exc:
                last_error = f"the endpoint's reply is not chat-completions JSON ({exc})"
                transient = False
                break
            usage = reply.get("usage") or {}
            tokens_in, tokens_out = int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
            eur = self._eur(tokens_in, tokens_out)
            self.budget.settle((reservation[0], reservation[1]), tokens_in + tokens_out, eur)
            reservation[0], reservation[1] = 0, 0.0
            try:
                text = reply["choices"][0]["message"]["content"]
            except (KeyError, IndexError, TypeError):
                return {**item_error("bad_reply", "the endpoint's reply has no choices[0].message.content"),
                        "transient": False}
            return {
                self.output_field: (text or "").strip(),
                "llm": {"tokens_in": tokens_in, "tokens_out": tokens_out, "cost_eur": round(eur, 6),
                        "attempts": attempt + 1, "latency_ms": round((time.perf_counter() - started) * 1000, 1),
                        "endpoint": self.endpoint.base_url, "location": self.endpoint.location,
                        "region": self.endpoint.region, "redacted": redacted, "sent_chars": len(prompt)},
            }
        return {**item_error("llm_failed", f"{last_error} after {attempt + 1} attempt(s)"), "transient": transient}

    def _post(self, body: dict[str, Any], idempotency_key: str) -> dict[str, Any]:
        url = self.endpoint.base_url.rstrip("/") + "/chat/completions"
        headers = {"Content-Type": "application/json"}
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        if self.endpoint.api_key:
            headers["Authorization"] = f"Bearer {self.endpoint.api_key}"
        request = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers, method="POST")
        with urllib.request.urlopen(request, timeout=self.timeout) as response:
            return json.loads(response.read().decode())
