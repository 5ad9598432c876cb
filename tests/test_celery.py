import gc

from hubsync.celery import freeze_loaded_objects


def test_a_starting_worker_freezes_what_it_has_loaded() -> None:
    gc.unfreeze()
    try:
        freeze_loaded_objects()
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
