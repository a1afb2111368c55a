"""The progress line, with a fake clock and StringIO streams (a pipe) or a fake terminal."""
from __future__ import annotations

import io
import os
import signal

import pytest

from rnnlab.training.progress import Progress, format_duration
from rnnlab.training.signals import graceful_interrupt


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


class FakeTerminal(io.StringIO):
    def isatty(self):
        return True


def test_format_duration():
    assert [format_duration(s) for s in (0, 59.4, 60, 192, 3599, 3600, 3720)] == \
        ["0s", "59s", "1m00s", "3m12s", "59m59s", "1h00m", "1h02m"]
    assert format_duration(float("inf")) == "?"


def test_pipe_gets_plain_lines_at_first_every_n_seconds_and_at_the_end():
    clock, out = FakeClock(), io.StringIO()
    progress = Progress(total_steps=20, stream=out, every_seconds=5.0, start_step=0, clock=clock)
    for step in range(1, 21):
        clock.now = step * 1.0
        progress.update(step, loss=2.0 - step / 100, chars_per_s=12345.0)
    progress.close()
    lines = out.getvalue().splitlines()
    assert "\r" not in out.getvalue()
    assert [line.split()[1] for line in lines] == ["1/20", "6/20", "11/20", "16/20", "20/20"]
    assert lines[0] == "step 1/20  loss 1.990  12,345 chars/s  ETA 19s"
    assert lines[-1].endswith("ETA 0s")


def test_every_steps_and_extra_fields():
    clock, out = FakeClock(), io.StringIO()
    progress = Progress(stream=out, every_seconds=None, every_steps=3, clock=clock)
    for step in range(1, 8):
        progress.update(step, extra={"lr": 0.002, "epoch": 1})
    assert [line.split()[1] for line in out.getvalue().splitlines()] == ["1", "3", "6"]
    assert out.getvalue().splitlines()[1] == "step 3  lr 0.002  epoch 1"


def test_eta_takes_the_earlier_of_steps_and_time_budget():
    clock = FakeClock()
    progress = Progress(total_steps=1000, time_budget=60.0, stream=io.StringIO(), start_step=0, clock=clock)
    clock.now = 10.0
    assert progress.eta_seconds(100, clock.now) == pytest.approx(50.0)   # budget: 50 s left; steps: 90 s
    clock.now = 10.0
    assert progress.eta_seconds(500, clock.now) == pytest.approx(10.0)   # steps: 10 s left
    no_limits = Progress(stream=io.StringIO(), clock=clock)
    assert no_limits.eta_seconds(5, 10.0) is None


def test_resumed_run_measures_the_rate_from_its_first_update():
    clock, out = FakeClock(), io.StringIO()
    progress = Progress(total_steps=2000, stream=out, every_seconds=1.0, clock=clock)
    clock.now = 3.0                      # set-up time, not counted
    progress.update(1001)
    clock.now = 4.0
    progress.update(1011)                # 10 steps/s -> 989 steps left = 98.9 s
    assert out.getvalue().splitlines()[-1] == "step 1011/2000  ETA 1m39s"


def test_terminal_redraws_in_place_at_most_ten_times_a_second_and_write_keeps_the_bar():
    clock, out = FakeClock(), FakeTerminal()
    progress = Progress(total_steps=100, stream=out, clock=clock)
    for step in range(1, 51):
        clock.now = step * 0.01          # 50 updates in half a second
        progress.update(step, loss=1.0)
    draws = out.getvalue().count("\r")
    assert 4 <= draws <= 6
    assert "\n" not in out.getvalue()
    progress.write("step 50: val loss 1.2")
    text = out.getvalue()
    # the bar is erased, the message printed on its own line, the bar drawn again below it
    assert "\rstep 50: val loss 1.2\n\rstep " in text.replace(" " * 40, "")
    progress.close()
    assert out.getvalue().endswith("\n")
    assert out.getvalue().rstrip("\n").rsplit("\r", 1)[-1].startswith("step 50/100  loss 1.000")


def test_pipe_write_is_a_plain_line():
    out = io.StringIO()
    progress = Progress(stream=out, clock=FakeClock())
    progress.write("hello")
    progress.close()
    assert out.getvalue() == "hello\n"


# --- signals.graceful_interrupt (lives here: tests/training/test_signals.py is not in this file set) ------------

def test_first_signal_sets_the_flag_and_handlers_are_restored():
    before = (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM))
    out = io.StringIO()
    with graceful_interrupt("{signal}: saving", stream=out) as interrupt:
        assert not interrupt.requested
        os.kill(os.getpid(), signal.SIGTERM)
        assert interrupt.requested and interrupt.signal_name == "SIGTERM"
    assert out.getvalue() == "SIGTERM: saving\n"
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before


def test_second_ctrl_c_raises_keyboard_interrupt_at_once():
    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt):
        with graceful_interrupt() as interrupt:
            os.kill(os.getpid(), signal.SIGINT)
            assert interrupt.requested and interrupt.signal_name == "SIGINT"
            os.kill(os.getpid(), signal.SIGINT)
            pytest.fail("the second SIGINT must interrupt at once")
    assert signal.getsignal(signal.SIGINT) == before
