import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ValidationError
from django.core.management import call_command

from sources.crypto import decrypt, identity_hash
from sources.models import SendOptions
from tests.conftest import TEST_CREDENTIALS
from tests.factories import NodeFactory

from .helpers import codes, create_send_source

pytestmark = pytest.mark.django_db


def test_rotation_reencrypts_with_the_newest_key(fake_send, settings):
    old_key = settings.HUBSYNC_ENCRYPTION_KEYS[0]
    node = NodeFactory()
    create_send_source(node.workspace, node)
    before = SendOptions.objects.get()
    new_key = Fernet.generate_key().decode()
    settings.HUBSYNC_ENCRYPTION_KEYS = [new_key, old_key]

    call_command("rotate_encryption_keys")

    after = SendOptions.objects.get()
    assert after.api_key_encrypted != before.api_key_encrypted
    settings.HUBSYNC_ENCRYPTION_KEYS = [new_key]
    assert decrypt(after.api_key_encrypted) == TEST_CREDENTIALS.api_key
    assert decrypt(after.user_key_encrypted) == TEST_CREDENTIALS.user_key
    assert after.api_key_hash == identity_hash(TEST_CREDENTIALS.api_key)
    assert after.api_key_hash != before.api_key_hash


def test_a_userdb_stays_taken_while_a_new_key_waits_for_rotation(fake_send, settings):
    old_key = settings.HUBSYNC_ENCRYPTION_KEYS[0]
    node = NodeFactory()
    create_send_source(node.workspace, node)
    settings.HUBSYNC_ENCRYPTION_KEYS = [Fernet.generate_key().decode(), old_key]

    with pytest.raises(ValidationError) as error:
        create_send_source(node.workspace, NodeFactory(workspace=node.workspace))

    assert codes(error.value) == {"USERDB_ALREADY_SYNCED"}
