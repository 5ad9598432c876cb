import pytest
from django.db import connection, transaction

from hubsync.db import execute_relaxed, relax_commit
from sync.models import AccountSlot

# Outside a transaction of the test's own, as the sync runs it.
pytestmark = pytest.mark.django_db(transaction=True)


def test_a_relaxed_statement_counts_its_rows_and_leaves_the_session_as_it_was():
    AccountSlot.objects.bulk_create(
        [AccountSlot(account="acct", number=n) for n in range(3)]
    )
    table = AccountSlot._meta.db_table
    with connection.cursor() as cursor:
        changed = execute_relaxed(
            cursor,
            f"UPDATE {table} SET number = number + 10 WHERE account = %s",  # noqa: S608
            ["acct"],
        )
        assert changed == 3
        if connection.vendor == "postgresql":
            cursor.execute("SHOW synchronous_commit")
            assert cursor.fetchone() == ("on",)
    assert sorted(AccountSlot.objects.values_list("number", flat=True)) == [10, 11, 12]


def test_only_an_outermost_transaction_is_relaxed():
    if connection.vendor != "postgresql":
        pytest.skip("synchronous_commit is PostgreSQL's")

    def setting():
        with connection.cursor() as cursor:
            cursor.execute("SHOW synchronous_commit")
            return cursor.fetchone()[0]

    with transaction.atomic():
        with transaction.atomic():
            relax_commit()
            assert setting() == "on"
        relax_commit()
        assert setting() == "off"
    assert setting() == "on"
