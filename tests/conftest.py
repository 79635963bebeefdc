from __future__ import annotations

import pytest

TINY = "random:tiny-qwen2"


@pytest.fixture(scope="session")
def tiny_backend():
    """A 3M-parameter Qwen2-architecture model with random weights (loads in well under a second)."""
    from ttclib.serving import TransformersBackend

    return TransformersBackend(TINY, batch_size=4)
