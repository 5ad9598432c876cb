import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hubsync.settings")

app = Celery("hubsync")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
