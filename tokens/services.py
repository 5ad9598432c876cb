"""Issuing, refreshing and checking API tokens."""

from __future__ import annotations

import datetime
import hashlib
import logging
import secrets

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from sources.models import Provider, Source

from .models import AccessToken

logger = logging.getLogger(__name__)

TOKEN_PREFIX = "hs_"  # noqa: S105 (a marker, not a secret)

# A token used again within this window keeps its recorded time, so that a
# busy client does not turn every request into a write.
LAST_USED_RESOLUTION = datetime.timedelta(minutes=1)


def token_digest(raw: str) -> str:
    """Return the stored form of a token: tokens are random, so SHA-256 does."""
    return hashlib.sha256(raw.encode()).hexdigest()


def _new_raw_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def admin_token_issue(*, user: User) -> tuple[AccessToken, str]:
    """Issue a new admin token for `user`; return it and its value (shown once)."""
    raw = _new_raw_token()
    token = AccessToken.objects.create(
        kind=AccessToken.Kind.ADMIN, user=user, token_hash=token_digest(raw)
    )
    logger.info("Admin token issued. token=%s user=%s", token.pk, user.pk)
    return token, raw


def source_token_issue(*, source: Source) -> str:
    """Give an API source a new token, replacing its old one; return the value."""
    if source.provider != Provider.API:
        raise ValueError("Only API sources have tokens.")
    raw = _new_raw_token()
    with transaction.atomic():
        Source.objects.select_for_update().filter(pk=source.pk).first()
        AccessToken.objects.filter(source=source).delete()
        token = AccessToken.objects.create(
            kind=AccessToken.Kind.SOURCE, source=source, token_hash=token_digest(raw)
        )
    logger.info("Source token issued. token=%s source=%s", token.pk, source.pk)
    return raw


def token_authenticate(raw: str) -> AccessToken | None:
    """Return the live token with value `raw`, or None, and note its use."""
    token = (
        AccessToken.objects.select_related("user", "source")
        .filter(token_hash=token_digest(raw))
        .first()
    )
    if token is None:
        return None
    if token.is_admin and (token.user is None or not token.user.is_active):
        return None
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
        AccessToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token
