"""Upload size caps, enforced while a multipart request is read rather than after it is stored.

Django writes any uploaded file to memory or a temporary file before a view can look at its size, and
several views then read it whole. This handler comes first in FILE_UPLOAD_HANDLERS: it refuses a body
whose Content-Length is over the cap of the endpoint it is sent to without reading a byte of it, and
stops a file that grows past that cap while it streams. The refusal is a MultiPartParserError: a 400
with the message from the API (DRF's "Multipart form parse error - …"), Django's 400 page elsewhere.
"""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

from django.conf import settings
from django.core.files.uploadhandler import FileUploadHandler
from django.http.multipartparser import MultiPartParserError
from django.urls import Resolver404, resolve
from django.utils import translation
from django.utils.translation import gettext
from django.utils.translation.trans_real import parse_accept_lang_header

from workflows.governance.labelsets import MAX_BYTES as labelled_set_bytes

# Room for the other form fields and the multipart framing around the file.
FORM_SLACK = 64 * 1024


class UploadTooLarge(MultiPartParserError):
    pass


def caps() -> dict[str, int]:
    """The largest file each upload endpoint takes, by URL name."""
    data = settings.ENGINE_UPLOAD_MAX_BYTES
    model = settings.MODEL_IMPORT_MAX_BYTES
    return {
        "api-workflow-runs": data, "api-upload-preview": data, "run-start": data, "api-datasets": data,
        "dataset-list": data, "api-labelled-sets": labelled_set_bytes, "labelled-set-upload": labelled_set_bytes,
        "api-model-import": model, "model-import": model,
    }


def cap_for(request: Any) -> int:
    """The endpoint's cap. Any other endpoint (a workflow export file, which its view reads no further
    than twice GRAPH_MAX_BYTES, or one that takes no file) gets the cap of an ordinary request body."""
    match = getattr(request, "resolver_match", None)
    if match is None:
        try:
            match = resolve(request.path_info)
        except Resolver404:
            match = None
    default = settings.DATA_UPLOAD_MAX_MEMORY_SIZE or settings.FILE_UPLOAD_MAX_MEMORY_SIZE
    return caps().get(match.url_name if match else "", default)


class UploadCapHandler(FileUploadHandler):
    cap = 0

    def _refuse(self, size: str) -> UploadTooLarge:
        return UploadTooLarge(gettext("The upload is %(size)s; the limit for this endpoint is %(limit)s MB. Split "
                                      "the file into smaller ones.") % {"size": size, "limit": f"{self.cap / 1e6:.1f}"})

    def handle_raw_input(self, input_data: Any, META: Any, content_length: int, boundary: bytes,
                         encoding: str | None = None) -> None:
        self.cap = cap_for(self.request)
        if content_length > self.cap + FORM_SLACK:
            raise self._refuse(gettext("%(size)s MB") % {"size": f"{content_length / 1e6:.1f}"})
        return None

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes:
        if start + len(raw_data) > self.cap:
            raise self._refuse(gettext("over %(size)s MB") % {"size": f"{self.cap / 1e6:.1f}"})
        return raw_data

    def file_complete(self, file_size: int) -> None:
        return None


class BodySizeGuard:
    """ASGI middleware: refuse a body over its endpoint's cap before Django reads a byte of it.

    Django's ASGI handler spools the whole request body (to disk past FILE_UPLOAD_MAX_MEMORY_SIZE)
    before the upload handlers above see it, so a 1 GB POST would be written to disk first. A
    declared Content-Length over the cap gets a 413 at once; a body without one (chunked) is cut off
    when it passes the cap (the view then sees a disconnected client and answers nothing).
    """

    def __init__(self, app: Any):
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope.get("method") in {"GET", "HEAD", "OPTIONS"}:
            return await self.app(scope, receive, send)
        cap = cap_for(SimpleNamespace(path_info=scope.get("path", "")))  # URL resolving only: no database
        limit = cap + FORM_SLACK
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            with translation.override(_language(scope)):  # before Django: no LocaleMiddleware has run yet
                detail = gettext("The request body is %(size)s MB; the limit for this endpoint is %(limit)s MB. Split "
                                 "the file into smaller ones.") % {"size": f"{int(declared) / 1e6:.1f}",
                                                                   "limit": f"{cap / 1e6:.1f}"}
            message = json.dumps({"detail": detail}, ensure_ascii=False).encode()
            await send({"type": "http.response.start", "status": 413,
                        "headers": [(b"content-type", b"application/json"),
                                    (b"content-length", str(len(message)).encode()),
                                    (b"connection", b"close")]})
            await send({"type": "http.response.body", "body": message})
            return None
        seen = 0

        async def bounded_receive() -> dict:
            nonlocal seen
            event = await receive()
            if event["type"] == "http.request":
                seen += len(event.get("body", b""))
                if seen > limit:
                    return {"type": "http.disconnect"}
            return event

        return await self.app(scope, bounded_receive, send)


def _language(scope: dict) -> str:
    """The first supported language of the request's Accept-Language, else the default. (The language
    cookie is not read: this runs on the raw ASGI scope, before Django parses cookies.)"""
    header = dict(scope.get("headers") or []).get(b"accept-language", b"").decode("latin-1")
    for code, _quality in parse_accept_lang_header(header):
        try:
            return translation.get_supported_language_variant(code)
        except LookupError:
            continue
    return settings.LANGUAGE_CODE


def redirect_after_upload(request: Any, to: str, **kwargs: Any) -> Any:
    """Where a form with a file goes next. Sent by htmx (an XHR, for its progress bar), a plain
    redirect would only replace the form: the browser is told to navigate for real."""
    from django.shortcuts import redirect, resolve_url
    from django_htmx.http import HttpResponseClientRedirect

    if getattr(request, "htmx", False):
        return HttpResponseClientRedirect(resolve_url(to, **kwargs))
    return redirect(to, **kwargs)

