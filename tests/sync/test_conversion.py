import datetime as dt

import pytest

from sync.conversion import (
    ConversionError,
    hub_to_send,
    match_key,
    send_to_hub_patch,
    to_hub,
    to_send,
    values_hash,
)


class Row:
    def __init__(self, hub_field, send_field, send_type="STRING", matching=False):
        self.hub_field, self.send_field = hub_field, send_field
        self.send_type, self.matching = send_type, matching


@pytest.mark.parametrize(
    ("value", "hub_type", "send_type", "expected"),
    [
        (True, "boolean", "FLAG", "true"),
        (False, "boolean", "FLAG", "false"),
        ("1990-05-17", "date", "DATE", "1990-05-17"),
        ("2024-03-01T10:20:30Z", "datetime", "DATE", "2024-03-01"),
        (
            "2024-03-01T12:20:30+02:00",
            "datetime",
            "TIMESTAMP",
            "2024-03-01T10:20:30.000000Z",
        ),
        ("2024-03-01", "date", "DATETIME", "2024-03-01T00:00:00.000000Z"),
        ("2024-03-01T10:20:30Z", "datetime", "TIME", "10:20:30"),
        (45.5, "number", "DOUBLE", "45.5"),
        (12.0, "number", "INTEGER", "12"),
        (12.5, "number", "STRING", "12.5"),
        (["a", "b"], "tags", "STRING", "a|b"),
        (" Ada@Example.com ", "email", "STRING", "Ada@Example.com"),
        (None, "string", "STRING", None),
        ("", "string", "STRING", None),
    ],
)
def test_it_converts_hub_values_per_send_type(value, hub_type, send_type, expected):
    assert to_send(value, hub_type, send_type) == expected


@pytest.mark.parametrize(
    ("value", "hub_type", "send_type"),
    [
        ("not a date", "date", "DATE"),
        (12.5, "number", "INTEGER"),
        (-1, "number", "POSITIVE_INTEGER"),
        ("maybe", "boolean", "FLAG"),
        (["x" * 200, "y" * 60], "tags", "STRING"),
        (["a"], "tags", "INTEGER"),
        ("nan", "number", "DOUBLE"),
    ],
)
def test_it_refuses_values_that_cannot_be_converted(value, hub_type, send_type):
    with pytest.raises((ConversionError, ValueError)):
        to_send(value, hub_type, send_type)


def test_it_names_the_field_in_a_conversion_error():
    rows = [Row("base.dob", "birthday", "DATE")]
    with pytest.raises(ConversionError, match=r"base\.dob cannot be written"):
        hub_to_send({"base": {"dob": "17/05/1990"}}, rows)


def test_it_reads_send_values_back_into_hub_types():
    assert to_hub("true", "boolean", "FLAG") is True
    assert to_hub("a|b", "tags", "STRING") == ["a", "b"]
    assert to_hub("2024-03-01T10:20:30.000000Z", "datetime", "TIMESTAMP") == (
        "2024-03-01T10:20:30Z"
    )
    assert to_hub("1.5", "number", "DOUBLE") == 1.5
    assert to_hub(None, "string", "STRING") is None


def test_it_builds_a_merge_patch_without_read_only_fields():
    rows = [
        Row("base.firstName", "first"),
        Row("updatedAt", "upd"),
        Row("tags.manual", "t"),
    ]
    patch = send_to_hub_patch({"first": "Ada", "upd": "x", "t": "a|b"}, rows)
    assert patch == {"base": {"firstName": "Ada"}, "tags": {"manual": ["a", "b"]}}


def test_it_compares_emails_trimmed_and_without_case():
    assert match_key(" Ada@Example.COM ", "base.contacts.email") == "ada@example.com"
    assert match_key(" Ada ", "base.firstName") == "Ada"


def test_it_hashes_values_independently_of_order():
    assert values_hash({"a": "1", "b": None}) == values_hash({"b": None, "a": "1"})
    assert values_hash({"a": "1"}) != values_hash({"a": "2"})


def test_it_writes_datetime_objects_in_utc():
    moment = dt.datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=dt.UTC)
    assert to_send(moment, "datetime", "DATETIME") == "2024-01-02T03:04:05.000006Z"
