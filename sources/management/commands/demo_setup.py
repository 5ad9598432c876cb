"""Create the demo workspace, login and Send source used by `make run`.

Talks to the Send emulator named by SEND_WSDL_URL (its control API) to
create a demo account and an empty userdb. Does nothing when the demo
workspace exists already.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.contrib.auth.models import User
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from hub.models import Workspace
from hub.services import entry_node_create, workspace_create
from sources.models import Provider
from sources.services import (
    FieldRow,
    NodeGrant,
    SendSettings,
    SourceSpec,
    SubscriptionRow,
    source_create,
)
from subscriptions.services import subscription_system_create

DEMO_WORKSPACE = "Demo"
DEMO_LOGIN = ("demo", "demo")
# Keys the emulator accepts for the demo account: not secrets of any kind.
DEMO_API_KEY = "demo-api-key"
DEMO_USER_KEY = "demo-user-key"

USERDB_FIELDS: list[dict[str, str | bool]] = [
    {"name": "email", "type": "STRING", "emailField": True},
    {"name": "firstName", "type": "STRING"},
    {"name": "lastName", "type": "STRING"},
    {"name": "city", "type": "STRING"},
    {"name": "birthday", "type": "DATE"},
]
FIELD_MAP = (
    FieldRow("base.contacts.email", "email", matching=True),
    FieldRow("base.firstName", "firstName"),
    FieldRow("base.lastName", "lastName"),
    FieldRow("base.address.city", "city"),
    FieldRow("base.dob", "birthday"),
)


class Command(BaseCommand):
    help = "Create the demo workspace, login and Send source (for make run)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--emulator", help="the emulator's base URL")

    def handle(self, *args: Any, **options: Any) -> None:
        login, password = DEMO_LOGIN
        if Workspace.objects.filter(name=DEMO_WORKSPACE).exists():
            self.stdout.write("The demo workspace exists already.")
            return

        base_url = options["emulator"] or _emulator_url()
        userdb = _demo_userdb(base_url)
        with transaction.atomic():
            user = User.objects.filter(username=login).first()
            if user is None:
                user = User.objects.create_superuser(
                    login, "demo@example.com", password
                )
            workspace = workspace_create(name=DEMO_WORKSPACE)
            workspace.members.add(user)
            node = entry_node_create(workspace=workspace, name="Demo shop")
            subscription_system_create(
                workspace=workspace, system_id="newsletter", name="Newsletter"
            )
        source_create(
            workspace=workspace,
            provider=Provider.CONTACTSEND,
            actor=user,
            spec=SourceSpec(
                name="Demo Send",
                description="The demo userdb of the Send emulator.",
                nodes=(NodeGrant(node, "RW"),),
                send=SendSettings(
                    userdb_id=userdb["id"],
                    api_key=DEMO_API_KEY,
                    user_key=DEMO_USER_KEY,
                    fields=FIELD_MAP,
                    subscriptions=(
                        SubscriptionRow(
                            "newsletter",
                            userdb["subscriptions"][0]["id"],
                            userdb["subscriptions"][0]["webformCode"],
                        ),
                    ),
                ),
            ),
        )
        self.stdout.write(
            f"Created workspace {workspace.id} with node 'Demo shop' and the "
            f"source 'Demo Send' on userdb {userdb['id']}."
        )


def _emulator_url() -> str:
    parts = urlsplit(settings.SEND_WSDL_URL)
    return f"{parts.scheme}://{parts.netloc}"


def _demo_userdb(base_url: str) -> dict[str, Any]:
    http = requests.Session()
    try:
        account = http.post(
            f"{base_url}/_control/accounts",
            json={"apiKey": DEMO_API_KEY, "userKey": DEMO_USER_KEY},
            timeout=10,
        )
        account.raise_for_status()
        answer = http.post(
            f"{base_url}/_control/userdbs",
            json={
                "apiKey": DEMO_API_KEY,
                "name": "Demo customers",
                "fields": USERDB_FIELDS,
                "subscriptions": [
                    {
                        "name": "Newsletter",
                        "registrationField": "newsletter",
                        "webformCode": "WF-DEMO-NEWS",
                    }
                ],
            },
            timeout=10,
        )
        answer.raise_for_status()
    except requests.RequestException as error:
        raise CommandError(
            f"The Send emulator at {base_url} did not answer."
        ) from error
    result: dict[str, Any] = answer.json()
    return result
