import pytest

from sources.send.client import SoapSendGateway

FIELDS = (
    ("email", "STRING", True),
    ("firstName", "STRING"),
    ("age", "INTEGER"),
    ("score", "DOUBLE"),
    ("active", "FLAG"),
    ("birthday", "DATE"),
    ("seenAt", "DATETIME"),
    ("notes", "TEXT"),
)


@pytest.fixture
def credentials(send):
    return send.create_account("test-api-key-1", "test-user-key-1")


@pytest.fixture
def userdb(send, credentials):
    """A userdb with typed fields and one subscription system."""
    return send.create_userdb(
        credentials.api_key,
        name="Customers",
        fields=FIELDS,
        subscriptions=[
            {
                "name": "Weekly news",
                "registrationField": "newsStatus",
                "webformCode": "WF-NEWS",
            }
        ],
    )


@pytest.fixture
def gateway(credentials):
    gateway = SoapSendGateway(credentials)
    yield gateway
    gateway.close()
