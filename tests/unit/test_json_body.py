"""The JSON request-body parser: limits, media type, encoding and duplicate members end in 4xx codes."""

from __future__ import annotations

import json
import time

import azure.functions as func
import pytest
from pydantic import BaseModel

from http_triggers._support import RequestValidationError, read_json
from shared.errors import InvalidJson, InvalidRequest, PayloadTooLarge, UnsupportedMediaType
from shared.http import JsonLimits, parse_json_body, require_json_media_type

LIMITS = JsonLimits(max_body_bytes=64 * 1024, max_depth=8, max_number_chars=20, max_string_chars=100)


def _code(body: bytes, limits: JsonLimits = LIMITS) -> str:
    with pytest.raises(InvalidJson) as err:
        parse_json_body(body, limits)
    return err.value.instance_code


def test_well_formed_json_within_the_limits_parses() -> None:
    body = {"role": "reader", "nested": [[[[[[[1]]]]]]], "n": -12345678901234567, "f": 1.5e300,
            "text": "x" * 100, "esc": "quote \" and [brackets] {braces} \\"}
    assert parse_json_body(json.dumps(body).encode(), LIMITS) == body


@pytest.mark.parametrize("depth", [9, 1_000, 10_000])
def test_nesting_beyond_the_limit_is_json_too_deep(depth: int) -> None:
    assert _code(b"[" * depth + b"]" * depth) == "json-too-deep"
    assert _code(b'{"a":' * depth + b"1" + b"}" * depth) == "json-too-deep"


def test_the_deepest_nesting_that_fits_in_a_body_is_refused_quickly() -> None:
    started = time.perf_counter()
    with pytest.raises(InvalidJson) as err:
        parse_json_body(b"[" * (256 * 1024))
    assert err.value.instance_code == "json-too-deep"
    assert time.perf_counter() - started < 1.0


def test_two_kilobytes_of_open_brackets_is_too_deep_with_the_default_limits() -> None:
    with pytest.raises(InvalidJson) as err:
        parse_json_body(b"[" * 2048)
    assert err.value.instance_code == "json-too-deep"


def test_brackets_inside_strings_do_not_count_as_nesting() -> None:
    body = json.dumps({"a": "[" * 50 + "\\\"{" * 10}).encode()
    assert parse_json_body(body, LIMITS)["a"].startswith("[[[")


def test_an_unterminated_string_full_of_quotes_is_refused_quickly() -> None:
    body = b'"' + b'\\"' * 30_000
    started = time.perf_counter()
    assert _code(body) == "malformed-json"
    assert time.perf_counter() - started < 1.0


@pytest.mark.parametrize("literal", [b"9" * 5_000, b"-" + b"9" * 21, b"1" + b"0" * 400 + b".5",
                                     b"1e999999", b"-1e400", b"1.0e308000"])
def test_huge_numbers_are_json_number_too_large(literal: bytes) -> None:
    assert _code(b'{"n": ' + literal + b"}") == "json-number-too-large"


@pytest.mark.parametrize("constant", [b"NaN", b"Infinity", b"-Infinity"])
def test_non_standard_constants_are_malformed(constant: bytes) -> None:
    assert _code(b"[" + constant + b"]") == "malformed-json"


def test_a_string_beyond_the_limit_is_json_string_too_long() -> None:
    assert _code(json.dumps({"a": "x" * 101}).encode()) == "json-string-too-long"
    assert _code(json.dumps({"x" * 101: 1}).encode()) == "json-string-too-long"
    assert _code(json.dumps([["y" * 101]]).encode()) == "json-string-too-long"


@pytest.mark.parametrize("body", [b'{"role":"reader","role":"admin"}',
                                  b'{"graph":{"credential":{"type":"a","type":"b"}}}',
                                  b'[{"a":1},{"b":2,"b":2}]'])
def test_a_repeated_member_name_is_duplicate_json_key(body: bytes) -> None:
    assert _code(body) == "duplicate-json-key"


def test_the_same_name_in_different_objects_is_fine() -> None:
    assert parse_json_body(b'{"a":{"a":1},"b":[{"a":2}]}', LIMITS) == {"a": {"a": 1}, "b": [{"a": 2}]}


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-8-sig"])
def test_bodies_not_in_plain_utf8_are_malformed(encoding: str) -> None:
    assert _code('{"role": "reader"}'.encode(encoding)) == "malformed-json"


def test_not_json_is_malformed_and_nothing_of_the_body_is_echoed() -> None:
    with pytest.raises(InvalidJson) as err:
        parse_json_body(b"{secret-value", LIMITS)
    assert err.value.instance_code == "malformed-json"
    assert "secret-value" not in err.value.detail


def test_a_body_beyond_the_byte_limit_is_too_large() -> None:
    with pytest.raises(PayloadTooLarge):
        parse_json_body(b" " * (64 * 1024 + 1), LIMITS)


@pytest.mark.parametrize("content_type", ["application/json", "APPLICATION/JSON",
                                          "application/json; charset=utf-8", "Application/Json;Charset=UTF-8",
                                          'application/json; charset="utf-8"'])
def test_json_content_types_are_accepted(content_type: str) -> None:
    require_json_media_type(content_type)


@pytest.mark.parametrize("content_type", [None, "", "text/plain", "text/json",
                                          "application/x-www-form-urlencoded",
                                          "application/json; charset=utf-16", "application/jsonx",
                                          "multipart/form-data; boundary=x"])
def test_other_content_types_are_unsupported(content_type: str | None) -> None:
    with pytest.raises(UnsupportedMediaType) as err:
        require_json_media_type(content_type)
    assert err.value.status == 415
    assert err.value.instance_code == "unsupported-media-type"


class _Grant(BaseModel):
    role: str


def _request(body: bytes, content_type: str | None = "application/json") -> func.HttpRequest:
    headers = {"Content-Type": content_type} if content_type is not None else {}
    return func.HttpRequest(method="PUT", url="http://localhost/api/x", headers=headers, body=body)


def test_read_json_checks_media_type_then_parses_then_validates() -> None:
    assert read_json(_request(b'{"role":"reader"}'), _Grant).role == "reader"
    with pytest.raises(UnsupportedMediaType):
        read_json(_request(b'{"role":"reader"}', "text/plain"), _Grant)
    with pytest.raises(UnsupportedMediaType):
        read_json(_request(b'{"role":"reader"}', None), _Grant)
    with pytest.raises(InvalidJson):
        read_json(_request(b'{"role":"reader","role":"admin"}'), _Grant)
    with pytest.raises(RequestValidationError):
        read_json(_request(b'{"role":1}'), _Grant)


def test_read_json_takes_a_route_specific_limit() -> None:
    small = JsonLimits(max_body_bytes=32)
    with pytest.raises(PayloadTooLarge):
        read_json(_request(json.dumps({"role": "r" * 40}).encode()), _Grant, limits=small)


def test_read_json_without_a_body() -> None:
    with pytest.raises(InvalidRequest) as err:
        read_json(_request(b"", None), _Grant)
    assert err.value.instance_code == "body-required"

    class _Optional(BaseModel):
        role: str = "reader"

    assert read_json(_request(b"", None), _Optional, allow_empty=True).role == "reader"
