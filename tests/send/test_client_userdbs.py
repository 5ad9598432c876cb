import pytest

from sources.send.gateway import SendField, SendSubscription, UserDbNotFound


def test_it_describes_a_userdb(gateway, userdb):
    found = gateway.get_userdb(userdb["id"])

    assert found.identifier == userdb["id"]
    assert found.name == "Customers"
    assert found.subscriber_identifier_field == "id"
    assert found.locked is False
    assert found.read_only is False
    assert found.charset == "UTF-8"
    assert found.fields[:3] == (
        SendField("id", "INTEGER"),
        SendField("lastModified", "TIMESTAMP"),
        SendField("email", "STRING", email_field=True),
    )
    assert SendField("newsStatus", "INTEGER") in found.fields


def test_it_lists_only_the_userdbs_of_the_account(send, gateway, userdb):
    send.create_account("test-api-key-2", "test-user-key-2")
    send.create_userdb("test-api-key-2", name="Someone else's")
    second = send.create_userdb("test-api-key-1", name="Second")

    found = gateway.find_userdbs()

    assert [db.identifier for db in found] == [userdb["id"], second["id"]]


def test_it_pages_through_many_userdbs(send, gateway, credentials, settings):
    created = [send.create_userdb(name=f"db {n}")["id"] for n in range(3)]

    found = gateway.find_userdbs()

    assert [db.identifier for db in found] == created


def test_it_counts_subscribers(send, gateway, userdb):
    assert gateway.count_subscribers(userdb["id"]) == 0
    send.add_subscriber(userdb["id"], {"email": "ada@example.com"})

    assert gateway.count_subscribers(userdb["id"]) == 1


def test_it_reports_the_lock(send, gateway, userdb):
    assert gateway.is_locked(userdb["id"]) is False
    send.set_locked(userdb["id"])

    assert gateway.is_locked(userdb["id"]) is True
    assert gateway.get_userdb(userdb["id"]).locked is True


def test_it_lists_the_subscription_systems(gateway, userdb):
    found = gateway.find_subscriptions(userdb["id"])

    assert found == [
        SendSubscription(
            id=userdb["subscriptions"][0]["id"],
            name="Weekly news",
            registration_field="newsStatus",
            webform_code="WF-NEWS",
        )
    ]


@pytest.mark.parametrize(
    "call",
    [
        lambda gateway: gateway.get_userdb(999),
        lambda gateway: gateway.count_subscribers(999),
        lambda gateway: gateway.is_locked(999),
        lambda gateway: gateway.find_subscriptions(999),
        lambda gateway: gateway.get_subscriber(999, 1),
        lambda gateway: gateway.add_subscriber(999, {"email": "x@example.com"}),
    ],
)
def test_an_unknown_userdb_is_userdb_not_found(gateway, userdb, call):
    with pytest.raises(UserDbNotFound, match="userdb 999"):
        call(gateway)


def test_a_userdb_of_another_account_is_not_found(send, gateway, userdb):
    send.create_account("test-api-key-2", "test-user-key-2")
    other = send.create_userdb("test-api-key-2", name="Not yours")

    with pytest.raises(UserDbNotFound):
        gateway.count_subscribers(other["id"])
