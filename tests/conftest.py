import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
MIRROR = Path(os.environ.get("LAYERPUZZLE_DATA_MIRROR", REPO.parent / "shared" / "data"))

# tiny test models: one thread is faster than two (thread start-up dominates)
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def mirror() -> Path:
    if not MIRROR.is_dir():
        pytest.skip(f"data mirror {MIRROR} not found (set LAYERPUZZLE_DATA_MIRROR)")
    return MIRROR


@pytest.fixture(autouse=True)
def one_thread():
    """Every test starts on one thread, whatever the previous test (or a job it ran in-process) set."""
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(1)
