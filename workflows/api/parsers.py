"""JSON request bodies bounded in nesting depth, with numbers that are finite and text PostgreSQL can
store (workflows.engine.intake.json_loads): anything else is a 400 that says what is wrong, never a
RecursionError or a database error, a 500, later. (Their size is bounded before any parser runs: DRF
reads a JSON body through request.body, which refuses more than DATA_UPLOAD_MAX_MEMORY_SIZE.)"""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext
from rest_framework import parsers
from rest_framework.exceptions import ParseError

from workflows.engine.intake import json_loads


class BoundedJSONParser(parsers.JSONParser):
    def parse(self, stream: Any, media_type: str | None = None, parser_context: dict | None = None) -> Any:
        encoding = parsers.get_encoding(parser_context or {})  # a ParseError for a charset that is not text
        try:
            text = stream.read().decode(encoding)
        except UnicodeDecodeError:
            raise ParseError(gettext("JSON parse error - the body is not %(encoding)s text.")
                             % {"encoding": encoding}) from None
        try:
            return json_loads(text)
        except ValueError as exc:
            raise ParseError(gettext("JSON parse error - %(error)s") % {"error": exc}) from None
