"""Signals sent by the customer services, inside the writing transaction.

`customer_changed` carries: customer (the saved instance, or the deleted
one), action ("created", "updated", "deleted"), before and after (the
documents, None where absent), subscription_changes (a list of
`SubscriptionChange`) and source_id (the source that made the write, or
None). Receivers that write rows (the sync's outbox) therefore commit or
roll back with the change itself.
"""

from django.dispatch import Signal

customer_changed = Signal()
