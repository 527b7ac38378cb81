"""Fixtures shared by the whole suite."""

import os

import pytest
import torch
from accelerate.state import AcceleratorState, GradientState


@pytest.fixture(autouse=True, scope="session")
def one_thread():
    """Tiny models run fastest on one thread, and do not stall when the CPU is shared.
    T2I_GCPO_TEST_THREADS=2 runs the suite on two threads (the tolerances must hold there too,
    as with ATEN_CPU_CAPABILITY=default)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(int(os.environ.get("T2I_GCPO_TEST_THREADS", "1")))
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def fresh_accelerate_state():
    """Each run builds its own Accelerator; forget the previous one's singleton state."""
    yield
    AcceleratorState._reset_state(reset_partial_state=True)
    GradientState._reset_state()
