"""The batch reads give what the ORM gives, on both query paths."""

import datetime as dt
import uuid

import pytest

from hub.models import Customer
from hub.selectors import customer_documents, customer_documents_after
from tests.factories import CustomerFactory, NodeFactory

pytestmark = pytest.mark.django_db


def test_documents_read_in_batch_equal_the_model_documents(query_path):
    node, other = NodeFactory(), NodeFactory()
    whole = CustomerFactory(
        node=node,
        external_id="x-1",
        registered_at=dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC),
        updated_at=dt.datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=dt.UTC),
        registered_by=uuid.uuid4(),
        base={"firstName": "Ada", "contacts": {"email": "ada@example.com"}},
        extended={"score": 1.5, "ok": True},
        extra="",
        consents={"marketing": {"email": {"status": True}}},
        tags={"auto": ["a"], "manual": []},
    )
    bare = CustomerFactory(node=node, enabled=False, extra=None, tags={})
    elsewhere = CustomerFactory(node=other)

    documents = customer_documents(node.id, [whole.id, bare.id, elsewhere.id])

    assert set(documents) == {whole.id, bare.id}
    for customer in (whole, bare):
        stored = Customer.objects.get(id=customer.id)
        assert documents[customer.id] == stored.as_document()
    assert documents[whole.id]["registeredAt"] == "2026-01-02T03:04:05Z"
    assert documents[whole.id]["updatedAt"] == "2026-01-02T03:04:05.678901Z"


def test_documents_read_by_id_range_come_in_id_order(query_path):
    node, other = NodeFactory(), NodeFactory()
    customers = sorted((CustomerFactory(node=node) for _ in range(5)), key=by_id)
    CustomerFactory(node=other)

    first = customer_documents_after(node.id, None, None, 2)
    rest = customer_documents_after(node.id, customers[1].id, customers[3].id, 10)

    assert list(first) == [customers[0].id, customers[1].id]
    assert list(rest) == [customers[2].id, customers[3].id]
    stored = Customer.objects.get(id=customers[2].id)
    assert rest[customers[2].id] == stored.as_document()


def by_id(customer):
    return customer.id


def test_any_of_matches_like_in(query_path):
    node = NodeFactory()
    customers = [CustomerFactory(node=node) for _ in range(3)]
    wanted = {customers[0].id, customers[2].id, uuid.uuid4()}

    found = set(Customer.objects.filter(id__any_of=wanted).values_list("id", flat=True))

    assert found == {customers[0].id, customers[2].id}
    assert not Customer.objects.filter(id__any_of=[]).exists()
