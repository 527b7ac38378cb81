"""Fixtures shared by the whole suite."""

import pytest
import torch
from accelerate.state import AcceleratorState, GradientState


@pytest.fixture(autouse=True, scope="session")
def one_thread():
    """Tiny models run fastest on one thread, and do not stall when the CPU is shared."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def fresh_accelerate_state():
    """Each run builds its own Accelerator; forget the previous one's singleton state."""
    yield
    AcceleratorState._reset_state(reset_partial_state=True)
    GradientState._reset_state()
