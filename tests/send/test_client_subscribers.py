import datetime as dt
from concurrent.futures import ThreadPoolExecutor

import pytest

from sources.send.gateway import (
    AttributeFilter,
    InvalidData,
    SubscriberNotFound,
    UserDbLocked,
)


def test_it_adds_a_subscriber_and_reads_it_back(gateway, userdb):
    added = gateway.add_subscriber(
        userdb["id"],
        {"email": "ada@example.com", "age": "36", "active": "true", "notes": None},
    )

    found = gateway.get_subscriber(userdb["id"], added.identifier)

    assert found == added
    assert found.attributes["id"] == str(added.identifier)
    assert found.attributes["email"] == "ada@example.com"
    assert found.attributes["age"] == "36"
    assert found.attributes["active"] == "true"
    assert found.attributes["notes"] is None
    assert found.attributes["birthday"] is None


def test_it_stamps_every_write_with_a_utc_modification_time(gateway, userdb):
    before = dt.datetime.now(dt.UTC)
    added = gateway.add_subscriber(userdb["id"], {"email": "ada@example.com"})
    updated = gateway.update_subscriber(userdb["id"], added.identifier, {"age": "1"})

    first = added.attributes["lastModified"]
    second = updated.attributes["lastModified"]
    assert first.endswith("Z")
    assert dt.datetime.fromisoformat(first) >= before.replace(microsecond=0)
    assert second > first


def test_it_keeps_values_in_their_wire_formats(gateway, userdb):
    added = gateway.add_subscriber(
        userdb["id"],
        {
            "score": "2.50",
            "birthday": "1815-12-10",
            "seenAt": "2024-01-02T03:04:05+01:00",
            "active": "FALSE",
        },
    )

    assert added.attributes["score"] == "2.5"
    assert added.attributes["birthday"] == "1815-12-10"
    assert added.attributes["seenAt"] == "2024-01-02T02:04:05.000000Z"
    assert added.attributes["active"] == "false"


def test_a_missing_subscriber_is_none(gateway, userdb):
    assert gateway.get_subscriber(userdb["id"], 12345) is None


def test_it_adds_a_batch_and_returns_identifiers_in_order(gateway, userdb):
    records = [{"email": f"user{n}@example.com"} for n in range(5)]

    added = gateway.add_subscribers(userdb["id"], records)

    assert [s.attributes["email"] for s in added] == [r["email"] for r in records]
    assert len({s.identifier for s in added}) == 5
    assert gateway.count_subscribers(userdb["id"]) == 5


def test_an_empty_batch_calls_nothing(send, gateway, userdb):
    assert gateway.add_subscribers(userdb["id"], []) == []
    assert "addSubscribers" not in send.counters()["calls"]


def test_a_batch_of_500_is_accepted_and_501_refused(send, gateway, userdb):
    records = [{"email": f"user{n}@example.com"} for n in range(501)]

    assert len(gateway.add_subscribers(userdb["id"], records[:500])) == 500
    with pytest.raises(InvalidData, match="at most 500"):
        gateway.add_subscribers(userdb["id"], records)
    assert gateway.count_subscribers(userdb["id"]) == 500


def test_a_bad_record_refuses_the_whole_batch(gateway, userdb):
    records = [{"email": "ok@example.com"}, {"age": "old"}]

    with pytest.raises(InvalidData, match="field age"):
        gateway.add_subscribers(userdb["id"], records)
    assert gateway.count_subscribers(userdb["id"]) == 0


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("age", "12.5"),
        ("age", "99999999999"),
        ("score", "many"),
        ("active", "yes"),
        ("birthday", "2024-02-30"),
        ("seenAt", "2024-01-02 03:04:05"),
        ("nickname", "Ada"),
    ],
)
def test_invalid_data_names_the_field(gateway, userdb, field, value):
    with pytest.raises(InvalidData, match=f"field {field}"):
        gateway.add_subscriber(userdb["id"], {field: value})


def test_it_updates_only_the_given_attributes(gateway, userdb):
    added = gateway.add_subscriber(
        userdb["id"], {"email": "ada@example.com", "firstName": "Ada"}
    )

    updated = gateway.update_subscriber(
        userdb["id"], added.identifier, {"firstName": None, "age": "37"}
    )

    assert updated.attributes["email"] == "ada@example.com"
    assert updated.attributes["firstName"] is None
    assert updated.attributes["age"] == "37"


def test_updating_a_missing_subscriber_is_subscriber_not_found(gateway, userdb):
    with pytest.raises(SubscriberNotFound, match="subscriber 77"):
        gateway.update_subscriber(userdb["id"], 77, {"age": "1"})


def test_it_removes_a_subscriber_and_a_second_removal_is_quiet(gateway, userdb):
    added = gateway.add_subscriber(userdb["id"], {"email": "ada@example.com"})

    gateway.remove_subscriber(userdb["id"], added.identifier)
    gateway.remove_subscriber(userdb["id"], added.identifier)

    assert gateway.get_subscriber(userdb["id"], added.identifier) is None


def test_it_finds_subscribers_by_one_field(gateway, userdb):
    gateway.add_subscribers(
        userdb["id"],
        [
            {"email": "ada@example.com"},
            {"email": "bob@example.com"},
            {"email": "ada@example.com"},
        ],
    )

    found = gateway.find_subscribers(userdb["id"], "email", "ada@example.com")

    assert [s.attributes["email"] for s in found] == ["ada@example.com"] * 2


def test_finding_by_an_unknown_field_is_invalid_data(gateway, userdb):
    with pytest.raises(InvalidData, match="field shoeSize"):
        gateway.find_subscribers(userdb["id"], "shoeSize", "42")


@pytest.fixture
def people(gateway, userdb):
    ages = [30, 9, 41, 25, 41, 70]
    return gateway.add_subscribers(
        userdb["id"],
        [
            {"email": f"p{n}@example.com", "age": str(age), "score": f"{age / 10}"}
            for n, age in enumerate(ages)
        ],
    )


@pytest.mark.parametrize(
    ("mode", "value", "ages"),
    [
        ("EQUALS", "41", [41, 41]),
        ("NOT_EQUALS", "41", [30, 9, 25, 70]),
        ("GREATER", "30", [41, 41, 70]),
        ("GREATER_EQUALS", "30", [30, 41, 41, 70]),
        ("LESS", "25", [9]),
        ("LESS_EQUALS", "25", [9, 25]),
        ("IN", "9,70, 25", [9, 25, 70]),
    ],
)
def test_it_compares_numbers_as_numbers(gateway, userdb, people, mode, value, ages):
    found = gateway.find_subscribers_by(
        userdb["id"], [AttributeFilter("age", value, mode)]
    )

    assert sorted(int(s.attributes["age"]) for s in found) == sorted(ages)


def test_it_matches_text_with_like(gateway, userdb, people):
    found = gateway.find_subscribers_by(
        userdb["id"], [AttributeFilter("email", "p1%", "LIKE")]
    )

    assert [s.attributes["email"] for s in found] == ["p1@example.com"]


def test_it_combines_filters(gateway, userdb, people):
    found = gateway.find_subscribers_by(
        userdb["id"],
        [
            AttributeFilter("age", "20", "GREATER"),
            AttributeFilter("score", "4.1", "LESS_EQUALS"),
        ],
    )

    assert sorted(s.attributes["age"] for s in found) == ["25", "30", "41", "41"]


def test_it_sorts_and_pages(gateway, userdb, people):
    def page(number, ascending=True):
        found = gateway.find_subscribers_by(
            userdb["id"],
            [],
            page=number,
            page_size=4,
            sort_field="age",
            ascending=ascending,
        )
        return [int(s.attributes["age"]) for s in found]

    assert page(1) == [9, 25, 30, 41]
    assert page(2) == [41, 70]
    assert page(3) == []
    assert page(1, ascending=False) == [70, 41, 41, 30]


def test_it_polls_changes_by_modification_time(send, gateway, userdb, people):
    since = people[2].attributes["lastModified"]
    send.edit_subscriber(userdb["id"], people[0].identifier, {"firstName": "Eve"})

    found = gateway.find_subscribers_by(
        userdb["id"],
        [AttributeFilter("lastModified", since, "GREATER")],
        sort_field="lastModified",
    )

    identifiers = [s.identifier for s in found]
    assert identifiers == [p.identifier for p in people[3:]] + [people[0].identifier]


def test_timestamps_compare_as_times_whatever_their_offset(gateway, userdb):
    gateway.add_subscribers(
        userdb["id"],
        [{"seenAt": "2024-01-01T10:00:00Z"}, {"seenAt": "2024-01-01T12:00:00Z"}],
    )

    found = gateway.find_subscribers_by(
        userdb["id"],
        [AttributeFilter("seenAt", "2024-01-01T12:30:00+01:00", "LESS")],
    )

    assert [s.attributes["seenAt"] for s in found] == ["2024-01-01T10:00:00.000000Z"]


def test_sorting_on_an_unknown_field_is_invalid_data(gateway, userdb):
    with pytest.raises(InvalidData, match="field shoeSize"):
        gateway.find_subscribers_by(userdb["id"], [], sort_field="shoeSize")


def test_it_changes_the_subscription_status(gateway, userdb):
    added = gateway.add_subscriber(userdb["id"], {"email": "ada@example.com"})

    gateway.modify_subscription_status("WF-NEWS", added.identifier, True)
    subscribed = gateway.get_subscriber(userdb["id"], added.identifier)
    gateway.modify_subscription_status("WF-NEWS", added.identifier, False)
    unsubscribed = gateway.get_subscriber(userdb["id"], added.identifier)

    assert subscribed.attributes["newsStatus"] == "1"
    assert unsubscribed.attributes["newsStatus"] == "-1"
    assert (
        unsubscribed.attributes["lastModified"] > subscribed.attributes["lastModified"]
    )


def test_an_unknown_webform_is_invalid_data(gateway, userdb):
    added = gateway.add_subscriber(userdb["id"], {"email": "ada@example.com"})

    with pytest.raises(InvalidData, match="WF-NOPE"):
        gateway.modify_subscription_status("WF-NOPE", added.identifier, True)


@pytest.mark.parametrize(
    "write",
    [
        lambda gateway, db, sid: gateway.add_subscriber(db, {"email": "x@ex.com"}),
        lambda gateway, db, sid: gateway.add_subscribers(db, [{"email": "x@ex.com"}]),
        lambda gateway, db, sid: gateway.update_subscriber(db, sid, {"age": "2"}),
        lambda gateway, db, sid: gateway.remove_subscriber(db, sid),
        lambda gateway, db, sid: gateway.modify_subscription_status(
            "WF-NEWS", sid, True
        ),
    ],
)
def test_a_locked_userdb_refuses_writes(send, gateway, userdb, write):
    added = gateway.add_subscriber(userdb["id"], {"email": "ada@example.com"})
    send.set_locked(userdb["id"])

    with pytest.raises(UserDbLocked) as raised:
        write(gateway, userdb["id"], added.identifier)

    assert raised.value.retryable
    assert gateway.get_subscriber(userdb["id"], added.identifier) == added


def test_concurrent_writes_each_get_their_own_identifier(send, gateway, userdb):
    def add(number):
        return gateway.add_subscriber(userdb["id"], {"email": f"u{number}@ex.com"})

    with ThreadPoolExecutor(max_workers=8) as pool:
        added = list(pool.map(add, range(40)))

    assert len({s.identifier for s in added}) == 40
    assert gateway.count_subscribers(userdb["id"]) == 40
    stamps = [s["attributes"]["lastModified"] for s in send.subscribers(userdb["id"])]
    assert len(set(stamps)) == 40
