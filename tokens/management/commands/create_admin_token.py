"""Print a new admin token for a user: the only time its value is shown."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from tokens.services import admin_token_issue


class Command(BaseCommand):
    help = "Issue an admin API token for USERNAME and print it once."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")

    def handle(self, *args: Any, **options: Any) -> None:
        model = get_user_model()
        try:
            user = model._default_manager.get_by_natural_key(options["username"])
        except model.DoesNotExist as error:
            raise CommandError(f"There is no user {options['username']!r}.") from error
        _token, raw = admin_token_issue(user=user)
        self.stdout.write(raw)
