"""The bench's SIGTERM handling: a signal while a worker is being spawned is held until
the worker is on the list the cleanup stops, then exits as usual."""

import os
import signal

import pytest

from pipeline.bench import harness


@pytest.fixture
def bench_sigterm():
    previous = harness._exit_on_sigterm()
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_a_sigterm_inside_a_held_block_exits_after_it(bench_sigterm):
    reached = []
    with pytest.raises(SystemExit) as exited, harness._sigterm_held():
        os.kill(os.getpid(), signal.SIGTERM)
        _let_python_handle_signals()
        reached.append("after the signal")
    assert reached == ["after the signal"]
    assert exited.value.code == 128 + signal.SIGTERM
    with harness._sigterm_held():  # nothing left pending for the next block
        reached.append("next block")
    assert reached[-1] == "next block"


def test_a_sigterm_outside_exits_at_once(bench_sigterm):
    with pytest.raises(SystemExit) as exited:
        os.kill(os.getpid(), signal.SIGTERM)
        _let_python_handle_signals()
        raise AssertionError("the signal did not exit")
    assert exited.value.code == 128 + signal.SIGTERM


def _let_python_handle_signals() -> None:
    """CPython runs a Python signal handler at its next check between bytecodes (a loop's
    backward jump is one), not inside the C call that raised the signal."""
    for _ in range(1000):
        pass
