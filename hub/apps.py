from django.apps import AppConfig


class HubConfig(AppConfig):
    name = "hub"

    def ready(self) -> None:
        # Registers the `any_of` lookup used by the sync's batch queries.
        import hubsync.db  # noqa: F401
