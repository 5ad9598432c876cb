import gc

from hubsync.celery import COLLECTOR_THRESHOLD, prepare_collector


def test_a_starting_worker_freezes_what_it_has_loaded_and_collects_less() -> None:
    thresholds = gc.get_threshold()
    gc.unfreeze()
    try:
        prepare_collector()

        assert gc.get_freeze_count() > 0
        assert gc.get_threshold() == (COLLECTOR_THRESHOLD, *thresholds[1:])
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)
