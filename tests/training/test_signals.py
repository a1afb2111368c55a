"""graceful_interrupt: the first signal sets a flag that long work polls (stop_if_requested); outside it, nothing."""
import signal

import pytest

from rnnlab.training.signals import Interrupted, graceful_interrupt, stop_if_requested


def test_long_work_stops_at_the_first_check_after_a_signal():
    checked = 0
    with graceful_interrupt() as interrupt:
        with pytest.raises(Interrupted):
            for i in range(1000):
                stop_if_requested()
                checked += 1
                if i == 3:
                    signal.raise_signal(signal.SIGTERM)
    assert checked == 4 and interrupt.requested and interrupt.signal_name == "SIGTERM"


def test_outside_a_graceful_block_the_check_does_nothing():
    stop_if_requested()
    with graceful_interrupt():
        pass
    stop_if_requested()
