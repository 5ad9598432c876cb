import gc
import os
from typing import Any

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hubsync.settings")

app = Celery("hubsync")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.worker_init.connect
def freeze_loaded_objects(**_: Any) -> None:
    """Leave what the worker has loaded out of the collector's passes.

    A pass writes to every object it visits, so in each child of a prefork
    pool the first one copied the pages of everything inherited from the
    parent: 47 MB of private memory per child before any task ran, 11 MB
    with this. The parent runs this once its modules are imported, before
    the pool forks.
    """
    gc.freeze()
