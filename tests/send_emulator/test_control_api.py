import pytest
import requests


def post(send, path, payload):
    return requests.post(f"{send.base_url}/_control/{path}", json=payload, timeout=5)


def put(send, path, payload):
    return requests.put(f"{send.base_url}/_control/{path}", json=payload, timeout=5)


@pytest.fixture
def account(send):
    return send.create_account("test-api-key-1", "test-user-key-1")


def test_it_creates_an_account(send):
    response = post(send, "accounts", {"apiKey": "test-api-key-1", "userKey": "u"})

    assert response.status_code == 201


def test_it_creates_a_userdb_with_its_subscription_systems(send, account):
    response = post(
        send,
        "userdbs",
        {
            "apiKey": "test-api-key-1",
            "name": "Shop",
            "fields": [{"name": "email", "type": "STRING", "emailField": True}],
            "subscriptions": [
                {"name": "News", "registrationField": "news", "webformCode": "WF-1"},
                {"name": "Offers", "registrationField": "offers"},
            ],
        },
    )

    assert response.status_code == 201
    answer = response.json()
    assert answer["id"] == 1
    assert answer["subscriptions"][0] == {"id": 1, "webformCode": "WF-1"}
    assert answer["subscriptions"][1]["webformCode"]
    listed = send.control("GET", "userdbs")[0]
    assert [f["name"] for f in listed["fields"]] == [
        "id",
        "lastModified",
        "email",
        "news",
        "offers",
    ]
    assert {f["type"] for f in listed["fields"][3:]} == {"INTEGER"}
    assert "apiKey" not in listed


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"name": "x", "fields": []}, "apiKey"),
        ({"apiKey": "test-api-key-1", "fields": []}, "name"),
        ({"apiKey": "test-api-key-2", "name": "x"}, "unknown apiKey"),
        (
            {"apiKey": "test-api-key-1", "name": "x", "fields": [{"name": "a"}]},
            "type",
        ),
        (
            {
                "apiKey": "test-api-key-1",
                "name": "x",
                "fields": [{"name": "a", "type": "COLOUR"}],
            },
            "unknown field type COLOUR",
        ),
        (
            {
                "apiKey": "test-api-key-1",
                "name": "x",
                "fields": [{"name": "a", "type": "DATE"}] * 2,
            },
            "used twice",
        ),
        (
            {
                "apiKey": "test-api-key-1",
                "name": "x",
                "fields": [{"name": "id", "type": "LONG"}],
            },
            "reserved",
        ),
    ],
)
def test_bad_userdb_input_is_400_with_a_message(send, account, payload, message):
    response = post(send, "userdbs", payload)

    assert response.status_code == 400
    assert message in response.json()["error"]


def test_a_registration_field_must_be_an_integer(send, account):
    userdb = send.create_userdb(fields=[("news", "STRING")])

    response = post(
        send,
        f"userdbs/{userdb['id']}/subscriptions",
        {"name": "News", "registrationField": "news"},
    )

    assert response.status_code == 400
    assert "news" in response.json()["error"]


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"errorRate": 1.5}, "errorRate must be between 0 and 1"),
        ({"timeoutRate": -0.1}, "timeoutRate must be a finite number"),
        ({"latencyMs": "slow"}, "latencyMs must be a number"),
        ({"maxConcurrency": 2.5}, "maxConcurrency must be a whole number"),
        ({"lostAnswerRate": True}, "lostAnswerRate must be a number"),
        ({"chaos": 1}, "unknown setting: chaos"),
        ([1, 2], "expected a JSON object"),
    ],
)
def test_bad_faults_are_400_with_a_message(send, payload, message):
    response = put(send, "faults", payload)

    assert response.status_code == 400
    assert message in response.json()["error"]


def test_faults_change_only_what_is_given_and_null_turns_off(send):
    send.set_faults(latencyMs=5, errorRate=0.25)

    answer = send.set_faults(latencyMs=None)

    assert answer == {
        "latencyMs": 0,
        "errorRate": 0.25,
        "timeoutRate": 0.0,
        "lostAnswerRate": 0.0,
        "requestsPerSecond": 0.0,
        "maxConcurrency": 0,
    }


def test_reset_empties_the_store_and_restores_the_start_limits(send, account):
    send.create_userdb()
    send.set_faults(errorRate=1, requestsPerSecond=3)

    send.reset()

    assert send.control("GET", "userdbs") == []
    assert send.control("GET", "faults")["errorRate"] == 0
    assert send.control("GET", "faults")["requestsPerSecond"] == 0
    assert send.counters() == {
        "calls": {},
        "faultsInjected": {},
        "writes": {},
        "soapFaults": {},
    }


def test_edits_made_in_send_bump_the_modification_time(send, account):
    userdb = send.create_userdb(fields=[("email", "STRING"), ("age", "INTEGER")])
    added = send.add_subscriber(userdb["id"], {"email": "a@example.com"})

    edited = send.edit_subscriber(userdb["id"], added["identifier"], {"age": "4"})

    assert edited["attributes"]["age"] == "4"
    assert edited["attributes"]["lastModified"] > added["attributes"]["lastModified"]
    assert send.subscribers(userdb["id"]) == [edited]


def test_edits_made_in_send_ignore_the_lock(send, account):
    userdb = send.create_userdb()
    added = send.add_subscriber(userdb["id"], {"email": "a@example.com"})
    send.set_locked(userdb["id"])

    send.edit_subscriber(userdb["id"], added["identifier"], {"email": "b@example.com"})
    send.delete_subscriber(userdb["id"], added["identifier"])

    assert send.subscribers(userdb["id"]) == []


def test_invalid_edits_are_400_naming_the_field(send, account):
    userdb = send.create_userdb(fields=[("age", "INTEGER")])

    response = post(
        send, f"userdbs/{userdb['id']}/subscribers", {"attributes": {"age": "x"}}
    )

    assert response.status_code == 400
    assert response.json()["code"] == "INVALID_DATA"
    assert "field age" in response.json()["error"]


def test_unknown_things_are_404(send, account):
    assert (
        requests.get(f"{send.base_url}/_control/nothing", timeout=5).status_code == 404
    )
    missing = requests.get(
        f"{send.base_url}/_control/userdbs/42/subscribers", timeout=5
    )
    assert missing.status_code == 404
    assert missing.json()["code"] == "USERDB_NOT_FOUND"


def test_a_body_that_is_not_json_is_400(send):
    response = requests.put(f"{send.base_url}/_control/faults", data=b"{", timeout=5)

    assert response.status_code == 400
