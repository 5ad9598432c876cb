"""Re-encrypt every stored Send key with the newest HUBSYNC_ENCRYPTION_KEYS key.

Put the new key first in HUBSYNC_ENCRYPTION_KEYS, keep the old ones after
it, run this command, then drop the old keys.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand
from django.db import transaction

from sources import crypto
from sources.models import SendOptions


class Command(BaseCommand):
    help = "Re-encrypt stored Send keys with the newest encryption key."

    def handle(self, *args: Any, **options: Any) -> None:
        count = 0
        with transaction.atomic():
            for row in SendOptions.objects.select_for_update().order_by("pk"):
                row.api_key_encrypted = crypto.reencrypt(row.api_key_encrypted)
                row.user_key_encrypted = crypto.reencrypt(row.user_key_encrypted)
                row.api_key_hash = crypto.identity_hash(
                    crypto.decrypt(row.api_key_encrypted)
                )
                row.save(
                    update_fields=[
                        "api_key_encrypted",
                        "user_key_encrypted",
                        "api_key_hash",
                    ]
                )
                count += 1
        self.stdout.write(f"Re-encrypted the keys of {count} Send sources.")
