"""Shared fixtures: float64 mode, the real data directory, and a clean backend per test."""
import os
from pathlib import Path

import numpy as np
import pytest

from tinynet import backend

REPO = Path(__file__).resolve().parents[1]
DATA_DIR = Path(os.environ.get("TINYNET_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture
def float64():
    """Build layers and optimizers in float64 for the duration of the test."""
    previous = backend.floatx()
    backend.set_floatx("float64")
    yield
    backend.set_floatx(previous)


@pytest.fixture(autouse=True)
def _fixed_thread_counts(monkeypatch):
    """Tests compare runs bit for bit; fit's adaptation of the thread counts to the machine's
    load (tinynet.threads.adapt_to_load) would make that depend on what else runs. test_threads
    tests the adaptation itself."""
    monkeypatch.setattr("tinynet.threads.adapt_to_load", lambda: None)


@pytest.fixture(autouse=True)
def _restore_backend_and_seed():
    """Every test starts from the same seed and leaves the backend and floatx as it found them."""
    name, fx = backend.get_backend(), backend.floatx()
    backend.set_seed(1234)
    yield
    backend.set_backend(name)
    backend.set_floatx(fx)


@pytest.fixture
def data_dir():
    """The real MNIST/Fashion-MNIST folder (../shared/data or $TINYNET_DATA); skips when absent."""
    if not (DATA_DIR / "mnist").is_dir():
        pytest.skip(f"real data not found in {DATA_DIR} (set TINYNET_DATA)")
    return DATA_DIR


def rng(seed=0):
    return np.random.default_rng(seed)


def zip_equal(*sequences):
    """``zip(..., strict=True)`` for Python 3.9 (which the project supports): the sequences must
    have the same length."""
    sequences = [list(s) for s in sequences]
    assert len({len(s) for s in sequences}) <= 1, [len(s) for s in sequences]
    return zip(*sequences)
