"""JSON pointers (RFC 6901) and the mapping from a sender's JSON to items: every problem names the
pointer in full, the item field it was for and where the lookup stopped."""

from __future__ import annotations

import pytest

from workflows.inbound.mapping import (
    Mapping,
    MappingError,
    NotFound,
    PointerError,
    example,
    join,
    mapping_problems,
    parse_pointer,
    resolve,
)

# The example document of RFC 6901 §5, and what each of its pointers refers to.
RFC_DOCUMENT = {"foo": ["bar", "baz"], "": 0, "a/b": 1, "c%d": 2, "e^f": 3, "g|h": 4, "i\\j": 5, 'k"l': 6,
                " ": 7, "m~n": 8}
RFC_CASES = [("", RFC_DOCUMENT), ("/foo", ["bar", "baz"]), ("/foo/0", "bar"), ("/", 0), ("/a~1b", 1),
             ("/c%d", 2), ("/e^f", 3), ("/g|h", 4), ("/i\\j", 5), ('/k"l', 6), ("/ ", 7), ("/m~0n", 8)]


@pytest.mark.parametrize("pointer, expected", RFC_CASES)
def test_every_pointer_of_the_rfc_example_resolves(pointer, expected):
    assert resolve(RFC_DOCUMENT, pointer) == expected


def test_tilde_one_is_unescaped_before_tilde_zero():
    assert parse_pointer("/~01") == ["~1"]  # not "/"
    assert resolve({"~1": "right", "/": "wrong"}, "/~01") == "right"
    assert join("", "a/b", "m~n", 3) == "/a~1b/m~0n/3"


@pytest.mark.parametrize("pointer", ["ticket/body", "/a~2b", "/a~", "#/a"])
def test_a_pointer_that_is_not_rfc_6901_is_refused_with_how_to_write_it(pointer):
    with pytest.raises(PointerError) as error:
        parse_pointer(pointer)
    assert pointer in str(error.value) or "~" in str(error.value)


@pytest.mark.parametrize("pointer, why", [
    ("/ticket/subject", "'/ticket' has no member 'subject'"),
    ("/tags/5", "'/tags' has 2 elements, so no index 5"),
    ("/tags/01", "'/tags' is an array: '01' is not an index"),
    ("/tags/-", "'/tags' is an array: '-' is not an index"),
    ("/ticket/body/x", "'/ticket/body' is text, with nothing inside"),
])
def test_a_pointer_that_finds_nothing_says_where_it_stopped(pointer, why):
    with pytest.raises(NotFound) as error:
        resolve({"ticket": {"body": "hi"}, "tags": ["a", "b"]}, pointer)
    assert why in error.value.why


def test_one_document_becomes_one_item_with_optional_fields_left_out_when_absent():
    mapping = Mapping({"text": "/ticket/body", "subject": "/ticket/subject"}, required=("text",))
    assert mapping.items({"ticket": {"body": "Fattura doppia"}}) == [{"text": "Fattura doppia"}]
    assert mapping.items({"ticket": {"body": "x", "subject": "y"}}) == [{"text": "x", "subject": "y"}]


def test_an_array_of_documents_becomes_many_items_with_escaped_names():
    payload = {"batch": {"tickets/open": [{"m~body": "uno", "lang": "it"}, {"m~body": "two", "lang": "en"}]}}
    mapping = Mapping({"text": "/m~0body", "lang": "/lang"}, items_pointer="/batch/tickets~1open",
                      required=("text", "lang"))
    assert mapping.items(payload) == [{"text": "uno", "lang": "it"}, {"text": "two", "lang": "en"}]


def test_every_problem_of_every_item_is_listed_with_its_full_pointer_and_field():
    payload = {"tickets": [{"body": "ok", "lang": "it"}, {"lang": "en"}, {"body": "  ", "lang": 7}]}
    mapping = Mapping({"text": "/body", "lang": "/lang"}, items_pointer="/tickets", required=("text", "lang"))
    with pytest.raises(MappingError) as error:
        mapping.items(payload)
    problems = error.value.problems
    assert problems == [
        "'/tickets/1/body' (for 'text') found nothing: '/tickets/1' has no member 'body'.",
        "'/tickets/2/body' (for 'text') is empty; 'text' needs text.",
        "'/tickets/2/lang' (for 'lang') is a number; 'lang' must be text.",
    ]


@pytest.mark.parametrize("payload, said", [
    ({"data": {}}, "The items pointer '/data/tickets' found nothing: '/data' has no member 'tickets'."),
    ({"data": {"tickets": {"a": 1}}}, "The items pointer '/data/tickets' found an object, not an array of items."),
    ({"data": {"tickets": []}}, "The items pointer '/data/tickets' found an empty array: there is nothing to take."),
])
def test_an_items_pointer_that_finds_no_array_says_what_it_found(payload, said):
    with pytest.raises(MappingError) as error:
        Mapping({"text": "/body"}, items_pointer="/data/tickets").items(payload)
    assert error.value.problems == [said]


def test_settings_problems_name_the_setting_and_the_field():
    problems = mapping_problems({"text": "body", "Bad-Name": "/x"}, "tickets", "/id~", required=["text", "lang"])
    assert "'text': 'body' is not a JSON pointer" in problems["mapping"][0]
    assert "'Bad-Name' is not an item field name" in problems["mapping"][1]
    assert problems["mapping"][2] == "Map 'lang': the workflow's inbound webhook source needs it."
    assert "'tickets' is not a JSON pointer" in problems["items_pointer"][0]
    assert "'~' must be followed by 0" in problems["idempotency_pointer"][0]
    assert mapping_problems({"text": "/a", "lang": "/b"}, "", "", ["text", "lang"]) == {}
    assert "mapping" in mapping_problems({}, "", "", ["text"])


def test_the_example_payload_is_read_back_by_its_own_mapping():
    fields = {"text": "/ticket/body", "lang": "/meta/a~1b"}
    document = example(fields, "/batch/0/items", "/event/id")
    assert resolve(document, "/event/id") == "delivery-0001"
    items = Mapping(fields, items_pointer="/batch/0/items", required=("text", "lang")).items(document)
    assert items == [{"text": "A sample text", "lang": "A sample lang"}]
