import pytest

from sources.send.fake import FakeSendGateway
from sources.send.gateway import SendCredentials, SendField, SendSubscription

pytest_plugins = ["tests.emulator_fixture"]

TEST_CREDENTIALS = SendCredentials("test-api-key-0001", "test-user-key-0001")


@pytest.fixture
def fake_send(settings):
    """Route every Send call to the in-memory fake, with one empty userdb (7)."""
    settings.SEND_GATEWAY = "sources.send.fake.FakeSendGateway"
    FakeSendGateway.reset()
    FakeSendGateway.seed(
        TEST_CREDENTIALS,
        7,
        fields=[
            SendField("email", "STRING", email_field=True),
            SendField("firstName", "STRING"),
            SendField("lastName", "STRING"),
            SendField("birthday", "DATE"),
            SendField("active", "FLAG"),
        ],
        subscriptions=[SendSubscription(11, "Weekly news", "news_status", "WF-NEWS")],
    )
    yield FakeSendGateway
    FakeSendGateway.reset()


@pytest.fixture(params=["postgresql", "portable"])
def query_path(request, settings):
    """Run a test on the PostgreSQL batch queries and on the portable ones."""
    settings.DB_FAST_PATH = request.param == "postgresql"
    return request.param
