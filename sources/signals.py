"""Signals of the source services, sent inside the writing transaction.

`source_changed` carries: source, action ("created", "updated",
"deleted"), changes (a set of `rules.Change`) and was_enabled (the
enabled flag before the write). The sync uses it to start the initial
sync on enable and to pause on disable.
"""

from django.dispatch import Signal

source_changed = Signal()
