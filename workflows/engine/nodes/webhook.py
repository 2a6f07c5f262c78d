"""The webhook sink: each result POSTed as JSON to a destination an administrator registered.

A designer names a registered destination and never types a URL, so documents go only where someone
responsible allowed. On top of that, every delivery:
- is refused when the workflow's data-residency policy forbids an external destination (checked when
  the run starts, and again here, since the destination may have changed since);
- redacts personal data first when the workflow requires it (patterns, and the NER model when the
  run pinned one);
- connects to the address it resolved and checked: an external destination must resolve to a public
  address, an on-premise one may be private or loopback, and none may be link-local (cloud metadata
  services live there), multicast or unspecified. Checking the very address it connects to leaves no
  gap for a DNS answer that changes between the check and the connection;
- follows no redirect (a 3xx is an error): a redirect could point anywhere;
- reports errors that say what to fix without describing the network (no resolver or socket texts,
  which would make the sink a port scanner); the details go to the worker's log.
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import logging
import socket
import ssl
import time
from typing import Any
from urllib.parse import urlsplit

from workflows.engine.state import ItemState
from workflows.graph.plan import Step
from workflows.models import WebhookDestination, Workflow
from workflows.runtimes.llm import redact

from .base import Handler, Outcome, RunContext, register
from .llm import redaction_extractor

logger = logging.getLogger(__name__)


class Refused(Exception):
    """The delivery was not attempted; the message is safe to show."""


def address_allowed(address: str, location: str) -> bool:
    ip = ipaddress.ip_address(address)
    if getattr(ip, "ipv4_mapped", None):
        ip = ip.ipv4_mapped
    if ip.is_link_local or ip.is_multicast or ip.is_unspecified:
        return False
    if location == WebhookDestination.EXTERNAL:
        return ip.is_global
    return ip.is_loopback or ip.is_private or ip.is_global


def resolve(host: str, port: int, location: str) -> tuple[Any, ...]:
    """The first address of `host` this destination may use, as a socket address."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        logger.warning("webhook destination host %r does not resolve", host, exc_info=True)
        raise Refused("the destination's host name does not resolve") from None
    for family, _, _, _, sockaddr in infos:
        if address_allowed(sockaddr[0], location):
            return family, sockaddr
    logger.warning("webhook destination %r resolves only to addresses not allowed for %s", host, location)
    raise Refused("the destination resolves to an address its registration does not allow") from None


class PinnedHTTPConnection(http.client.HTTPConnection):
    """Connects to the checked address; the Host header stays the destination's name."""

    def __init__(self, host: str, port: int, address: tuple[Any, ...], timeout: float):
        super().__init__(host, port, timeout=timeout)
        self.address = address

    def connect(self) -> None:
        family, sockaddr = self.address
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(sockaddr)


class PinnedHTTPSConnection(PinnedHTTPConnection):
    def __init__(self, host: str, port: int, address: tuple[Any, ...], timeout: float):
        super().__init__(host, port, address, timeout)
        self.context = ssl.create_default_context()

    def connect(self) -> None:
        super().connect()
        self.sock = self.context.wrap_socket(self.sock, server_hostname=self.host)


def post(destination: WebhookDestination, body: bytes, headers: dict[str, str], timeout: float) -> int:
    """POST to the destination through a checked address; the HTTP status (redirects not followed)."""
    url = urlsplit(destination.url)
    if url.scheme not in {"http", "https"} or not url.hostname:
        raise Refused("the destination's URL is not an http(s) URL")
    port = url.port or (443 if url.scheme == "https" else 80)
    address = resolve(url.hostname, port, destination.location)
    cls = PinnedHTTPSConnection if url.scheme == "https" else PinnedHTTPConnection
    conn = cls(url.hostname, port, address, timeout)
    try:
        conn.request("POST", (url.path or "/") + (f"?{url.query}" if url.query else ""), body=body, headers=headers)
        response = conn.getresponse()
        response.read(65536)  # the answer is not kept; read a little so the connection closes cleanly
        return response.status
    finally:
        conn.close()


def redact_values(value: Any, extractor: Any) -> Any:
    if isinstance(value, str):
        return redact(value, extractor)[0]
    if isinstance(value, dict):
        return {k: redact_values(v, extractor) for k, v in value.items()}
    if isinstance(value, list):
        return [redact_values(v, extractor) for v in value]
    return value


@register("sink.webhook")
class WebhookSinkHandler(Handler):
    """POSTs each item as JSON with `Idempotency-Key: run:node:item`; 5xx, 429 and timeouts are transient."""

    timeout = 10.0

    def prepare(self, step: Step, context: RunContext) -> None:
        super().prepare(step, context)
        name = step.config.get("destination")
        self.destination = WebhookDestination.objects.filter(name=name, enabled=True).first()
        if self.destination is None:
            raise LookupError(f"no enabled webhook destination is registered as '{name}'")
        workflow = Workflow.objects.filter(pk=context.workflow_id).first()
        if (self.destination.location == WebhookDestination.EXTERNAL and workflow is not None
                and not workflow.allow_external_endpoints):
            raise PermissionError(f"the workflow's data-residency policy forbids the external destination '{name}'")
        self.redact = workflow is None or workflow.require_redaction
        # Names and addresses need the personal-data model whether or not the graph uses one; without
        # it a workflow that requires redaction sends nothing (as the large-model node does).
        self.extractor = redaction_extractor(context, required=True) if self.redact else None

    def process(self, batch: list[ItemState], step: Step) -> list[Outcome]:
        return [self.deliver(s, step) for s in batch]

    def deliver(self, s: ItemState, step: Step) -> Outcome:
        key = self.context.idempotency_key(step.node.id, s.item_id)
        data = redact_values(s.data, self.extractor) if self.redact else s.data
        body = json.dumps({"run": self.context.run_id, "item": s.item_id, "seq": s.seq, "data": data},
                          ensure_ascii=False, default=str).encode()
        headers = {"Content-Type": "application/json", "Idempotency-Key": key}
        started = time.perf_counter()
        try:
            status = post(self.destination, body, headers, self.timeout)
            if 300 <= status < 400:
                outcome = Outcome(error=f"the destination answered HTTP {status}, a redirect, which is not followed; "
                                  "register the URL it redirects to instead", error_code="redirect")
            elif status >= 400:
                outcome = Outcome(error=f"the destination answered HTTP {status}", error_code=f"http_{status}",
                                  transient=status >= 500 or status == 429)
            else:
                outcome = Outcome(port="", fields={"webhook": {"status": status, "key": key,
                                                               "destination": self.destination.name}})
        except Refused as exc:
            outcome = Outcome(error=f"webhook not sent: {exc}", error_code="refused")
        except (OSError, http.client.HTTPException):
            logger.warning("webhook delivery to %s failed", self.destination.name, exc_info=True)
            outcome = Outcome(error="the destination did not take the delivery (no answer, or the connection "
                              "failed); it will be retried", error_code="unreachable", transient=True)
        outcome.latency_ms = (time.perf_counter() - started) * 1000
        return outcome
