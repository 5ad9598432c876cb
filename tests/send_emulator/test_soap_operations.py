import pytest

from .conftest import API_KEY, XSI, element, q, records, subscriber


def source(userdb_id):
    return element("sourceIdentifier", userdb_id)


def add(raw, userdb, attributes):
    answer = raw.call(
        "addSubscriber",
        source(userdb["id"]),
        element("subscriber", s=subscriber(attributes)),
    )
    assert answer.status == 200, answer.fault_string
    return records(answer, "tns:return")[0]


def test_it_lends_a_token(raw):
    assert raw.token
    assert len(raw.token) >= 20


def test_wrong_keys_get_an_authentication_fault(raw):
    answer = raw.login(API_KEY, "test-wrong-key")

    assert answer.status == 500
    assert answer.element.tag == "{http://schemas.xmlsoap.org/soap/envelope/}Fault"
    assert answer.soap_fault_code == "soap:Client"
    assert answer.fault_code == "AUTHENTICATION_FAILED"
    assert "test-wrong-key" not in answer.fault_string


def test_an_unknown_token_gets_its_own_fault(raw, userdb):
    raw.token = "not-a-token"

    answer = raw.call("countSubscribers", source(userdb["id"]))

    assert answer.fault_code == "INVALID_TOKEN"


def test_an_invalidated_token_is_refused(raw, userdb):
    raw.call("invalidateToken")

    answer = raw.call("countSubscribers", source(userdb["id"]))

    assert answer.fault_code == "INVALID_TOKEN"


def test_keepalive_answers_empty(raw):
    answer = raw.call("keepaliveToken")

    assert answer.status == 200
    assert answer.element.tag == q("keepaliveTokenResponse")
    assert len(answer.element) == 0


def test_it_describes_a_userdb_with_typed_fields(raw, userdb):
    answer = raw.call("getSubscriberSource", source(userdb["id"]))

    assert answer.value("tns:return/tns:identifier") == str(userdb["id"])
    assert answer.value("tns:return/tns:subscriberIdentifierFieldName") == "id"
    assert answer.value("tns:return/tns:locked") == "false"
    assert answer.value("tns:return/tns:readOnly") == "false"
    assert answer.value("tns:return/tns:hasExternalKey") == "false"
    fields = {
        item.findtext(q("name")): (
            item.findtext(q("type")),
            item.findtext(q("emailField")),
        )
        for item in answer.findall("tns:return/tns:fields")
    }
    assert fields == {
        "id": ("INTEGER", "false"),
        "lastModified": ("TIMESTAMP", "false"),
        "email": ("STRING", "true"),
        "age": ("INTEGER", "false"),
        "joined": ("TIMESTAMP", "false"),
        "vip": ("FLAG", "false"),
        "at": ("TIME", "false"),
        "news": ("INTEGER", "false"),
    }


def test_it_pages_the_userdb_list(send, raw, userdb):
    send.create_userdb(API_KEY, name="Second")
    prefs = element("lookupPrefs", a=element("pageNumber", 2), b=element("pageSize", 1))

    answer = raw.call("findSubscriberSources", prefs)

    assert answer.value("tns:return/tns:totalElements") == "2"
    assert answer.value("tns:return/tns:totalPages") == "2"
    assert answer.value("tns:return/tns:currentPageItems/tns:name") == "Second"


def test_it_answers_counts_and_locks_as_typed_values(send, raw, userdb):
    add(raw, userdb, {"email": "a@example.com"})
    send.set_locked(userdb["id"])

    count = raw.call("countSubscribers", source(userdb["id"]))
    locked = raw.call(
        "isSubscriberSourceLocked", element("subscriberSourceId", userdb["id"])
    )

    assert count.value() == "1"
    assert locked.value() == "true"


def test_an_added_subscriber_comes_back_with_nils_for_nulls(raw, userdb):
    identifier, attributes = add(
        raw, userdb, {"email": "a@example.com", "vip": "true", "age": None}
    )

    answer = raw.call(
        "getSubscriber",
        source(userdb["id"]),
        element("subscriberIdentifier", identifier),
    )

    nil_values = answer.findall("tns:return/tns:attributes/tns:value")
    assert records(answer, "tns:return") == [(identifier, attributes)]
    assert attributes["id"] == str(identifier)
    assert attributes["age"] is None
    assert attributes["vip"] == "true"
    assert any(value.get(f"{{{XSI}}}nil") == "true" for value in nil_values)


def test_a_missing_subscriber_gets_a_fault(raw, userdb):
    answer = raw.call(
        "getSubscriber", source(userdb["id"]), element("subscriberIdentifier", 404)
    )

    assert answer.fault_code == "SUBSCRIBER_NOT_FOUND"


def test_add_subscribers_returns_identifiers_in_order(raw, userdb):
    batch = "".join(
        element("subscribers", s=subscriber({"email": f"u{n}@example.com"}))
        for n in range(3)
    )

    answer = raw.call("addSubscribers", source(userdb["id"]), batch)

    found = records(answer, "tns:return")
    assert [attrs["email"] for _, attrs in found] == [
        "u0@example.com",
        "u1@example.com",
        "u2@example.com",
    ]
    assert [identifier for identifier, _ in found] == [1, 2, 3]


def test_add_subscribers_refuses_more_than_500(send, raw, userdb):
    batch = element("subscribers", s=subscriber({"email": "x@example.com"})) * 501

    answer = raw.call("addSubscribers", source(userdb["id"]), batch)

    assert answer.fault_code == "INVALID_DATA"
    assert answer.fault_field == "subscribers"
    assert send.subscribers(userdb["id"]) == []


@pytest.mark.parametrize(
    ("attributes", "field"),
    [
        ({"age": "ten"}, "age"),
        ({"vip": "maybe"}, "vip"),
        ({"joined": "yesterday"}, "joined"),
        ({"at": "25:00:00"}, "at"),
        ({"colour": "red"}, "colour"),
        ({"email": "x" * 256}, "email"),
    ],
)
def test_invalid_data_gets_a_fault_naming_the_field(raw, userdb, attributes, field):
    answer = raw.call(
        "addSubscriber",
        source(userdb["id"]),
        element("subscriber", s=subscriber(attributes)),
    )

    assert answer.status == 500
    assert answer.fault_code == "INVALID_DATA"
    assert answer.fault_field == field
    assert field in answer.fault_string


def test_a_request_off_the_schema_gets_a_fault(raw, userdb):
    answer = raw.call("countSubscribers", element("sourceIdentifier", "seven"))

    assert answer.fault_code == "INVALID_REQUEST"
    assert answer.soap_fault_code == "soap:Client"


def test_a_body_that_is_not_xml_gets_a_fault(send, raw):
    response = raw.http.post(send.soap_url, data=b"<oops", timeout=5)

    assert response.status_code == 500
    assert b"INVALID_REQUEST" in response.content


def test_an_unknown_userdb_gets_a_fault(raw, userdb):
    answer = raw.call("countSubscribers", source(999))

    assert answer.fault_code == "USERDB_NOT_FOUND"


def test_update_changes_the_given_fields_and_the_modification_time(raw, userdb):
    identifier, before = add(raw, userdb, {"email": "a@example.com", "age": "1"})

    answer = raw.call(
        "updateSubscriber",
        source(userdb["id"]),
        element("subscriber", s=subscriber({"age": "2"}, identifier)),
    )

    _, after = records(answer, "tns:return")[0]
    assert after["age"] == "2"
    assert after["email"] == "a@example.com"
    assert after["lastModified"] > before["lastModified"]


def test_remove_deletes_and_a_second_remove_gets_a_fault(raw, userdb):
    identifier, _ = add(raw, userdb, {"email": "a@example.com"})
    request = (source(userdb["id"]), element("subscriberIdentifier", identifier))

    first = raw.call("removeSubscriber", *request)
    second = raw.call("removeSubscriber", *request)

    assert first.status == 200
    assert second.fault_code == "SUBSCRIBER_NOT_FOUND"


def test_find_subscribers_matches_one_field_with_paging(raw, userdb):
    for n in range(5):
        add(raw, userdb, {"email": "same@example.com", "age": str(n)})
    prefs = element(
        "lookupPrefs",
        a=element("sortingField", "age"),
        b=element("sortingDirection", "DESC"),
        c=element("pageNumber", 1),
        d=element("pageSize", 2),
    )

    answer = raw.call(
        "findSubscribers",
        source(userdb["id"]),
        element(
            "attribute",
            k=element("key", "email"),
            v=element("value", "same@example.com"),
        ),
        prefs,
    )

    assert answer.value("tns:return/tns:totalElements") == "5"
    assert answer.value("tns:return/tns:totalPages") == "3"
    assert [attrs["age"] for _, attrs in records(answer)] == ["4", "3"]


def where(name, value, mode):
    return element(
        "whereAttribute",
        a=element("attributeName", name),
        b=element("attributeValue", value),
        c=element("lookupMatchingMode", mode),
    )


def pagination(field, direction, page=1, size=10):
    return element(
        "pagination",
        a=element(
            "sorting",
            f=element("attributeName", field),
            d=element("direction", direction),
        ),
        b=element("currentPage", page),
        c=element("pageSize", size),
    )


def test_find_subscribers_by_compares_timestamps_as_times(raw, userdb):
    add(raw, userdb, {"joined": "2024-03-01T10:00:00Z"})
    add(raw, userdb, {"joined": "2024-03-01T09:00:00.5Z"})
    add(raw, userdb, {"joined": "2024-02-29T23:59:59Z"})

    answer = raw.call(
        "findSubscribersBy",
        source(userdb["id"]),
        where("joined", "2024-03-01T09:00:00+00:00", "GREATER"),
        pagination("joined", "ASC"),
    )

    assert [attrs["joined"] for _, attrs in records(answer)] == [
        "2024-03-01T09:00:00.500000Z",
        "2024-03-01T10:00:00.000000Z",
    ]


def test_find_subscribers_by_returns_only_selected_attributes(raw, userdb):
    add(raw, userdb, {"email": "a@example.com", "age": "30"})

    answer = raw.call(
        "findSubscribersBy",
        source(userdb["id"]),
        element("selectedAttribute", "email"),
        where("age", "30,31", "IN"),
    )

    assert [attrs for _, attrs in records(answer)] == [{"email": "a@example.com"}]


def test_find_subscribers_by_refuses_an_unknown_mode(raw, userdb):
    answer = raw.call(
        "findSubscribersBy", source(userdb["id"]), where("age", "1", "ABOUT")
    )

    assert answer.fault_code == "INVALID_REQUEST"


def test_find_subscribers_by_refuses_like_on_numbers(raw, userdb):
    answer = raw.call(
        "findSubscribersBy", source(userdb["id"]), where("age", "1%", "LIKE")
    )

    assert answer.fault_code == "INVALID_DATA"
    assert answer.fault_field == "age"


def test_subscription_systems_and_status_changes(send, raw, userdb):
    identifier, before = add(raw, userdb, {"email": "a@example.com"})

    systems = raw.call(
        "findSubscriptionsBy",
        element(
            "attributes",
            k=element("key", "subscriberSourceIdentifier"),
            v=element("value", userdb["id"]),
        ),
    )
    changed = raw.call(
        "modifySubscriberSubscriptionStatus",
        element("webFormCode", "WF-RAW"),
        element("subscriberIdentifier", identifier),
        element("isSubscribed", "true"),
    )

    assert systems.value("tns:return/tns:currentPageItems/tns:webformCode") == "WF-RAW"
    assert systems.value("tns:return/tns:currentPageItems/tns:registrationField") == (
        "news"
    )
    assert changed.status == 200
    (stored,) = send.subscribers(userdb["id"])
    assert stored["attributes"]["news"] == "1"
    assert stored["attributes"]["lastModified"] > before["lastModified"]


def test_a_locked_userdb_refuses_writes_with_a_server_fault(send, raw, userdb):
    send.set_locked(userdb["id"])

    answer = raw.call(
        "addSubscriber",
        source(userdb["id"]),
        element("subscriber", s=subscriber({"email": "a@example.com"})),
    )

    assert answer.fault_code == "USERDB_LOCKED"
    assert answer.soap_fault_code == "soap:Server"
