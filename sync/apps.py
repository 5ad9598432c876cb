from django.apps import AppConfig


class SyncConfig(AppConfig):
    name = "sync"

    def ready(self) -> None:
        from hub.signals import customer_changed
        from sources.signals import source_changed

        from . import services

        customer_changed.connect(
            services.outbox_record, dispatch_uid="sync.outbox_record"
        )
        source_changed.connect(
            services.source_changed_record, dispatch_uid="sync.source_changed_record"
        )
