import pytest

from send_emulator import values


@pytest.mark.parametrize(
    ("field_type", "text", "wire"),
    [
        ("FLAG", "true", "true"),
        ("FLAG", "False", "false"),
        ("DATE", "2024-02-29", "2024-02-29"),
        ("DATETIME", "2024-02-29T23:00:00Z", "2024-02-29T23:00:00.000000Z"),
        ("TIMESTAMP", "2024-01-01T00:30:00.123+01:00", "2023-12-31T23:30:00.123000Z"),
        ("TIMESTAMP", "1969-12-31T23:59:59.999999Z", "1969-12-31T23:59:59.999999Z"),
        ("DOUBLE", "1e21", "1000000000000000000000.0"),
        ("DOUBLE", "-0.25", "-0.25"),
        ("INTEGER", "-2147483648", "-2147483648"),
        ("POSITIVE_INTEGER", "1", "1"),
        ("LONG", "9223372036854775807", "9223372036854775807"),
        ("CHAR", "x", "x"),
        ("STRING", "", ""),
        ("TEXT", "a" * 1000, "a" * 1000),
        ("TIME", "23:59:59", "23:59:59"),
    ],
)
def test_a_value_round_trips_to_its_wire_form(field_type, text, wire):
    assert values.render(field_type, values.parse(field_type, text)) == wire


@pytest.mark.parametrize(
    ("field_type", "text"),
    [
        ("FLAG", "1"),
        ("DATE", "2023-02-29"),
        ("DATE", "24-01-01"),
        ("DATETIME", "2024-01-01T00:00:00"),
        ("TIMESTAMP", "2024-01-01 00:00:00Z"),
        ("DOUBLE", "nan"),
        ("DOUBLE", "1,5"),
        ("INTEGER", "2147483648"),
        ("POSITIVE_INTEGER", "0"),
        ("LONG", "1.0"),
        ("STRING", "a" * 256),
        ("TIME", "24:00:00"),
    ],
)
def test_a_value_that_does_not_fit_is_refused(field_type, text):
    with pytest.raises(values.BadValue):
        values.parse(field_type, text)


def test_null_stays_null():
    assert values.parse("INTEGER", None) is None
    assert values.render("INTEGER", None) is None
