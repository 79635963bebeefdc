from __future__ import annotations

import pytest

TINY = "random:tiny-qwen2"


@pytest.fixture(scope="session")
def tiny_backend():
    """A 3M-parameter Qwen2-architecture model with random weights (loads in well under a second)."""
    from ttclib.serving import TransformersBackend

    return TransformersBackend(TINY, batch_size=4)


@pytest.fixture(scope="session")
def sglang_python():
    """The interpreter with SGLang. `make test` provides one and sets TTC_REQUIRE_SGLANG=1, so
    there a missing SGLang fails the suite instead of skipping."""
    import os

    from ttclib.server import sglang_python as find

    python = find()
    if python is None:
        if os.environ.get("TTC_REQUIRE_SGLANG") == "1":
            pytest.fail("TTC_REQUIRE_SGLANG=1 but no SGLang: set TTC_SGLANG_PYTHON (make sglang-env)")
        pytest.skip("SGLang not installed (make test installs it; or set TTC_SGLANG_PYTHON)")
    return python


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """The tiny Qwen2 architecture with fixed random weights saved as a HF directory, so that
    SGLang and transformers load the very same weights."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    from ttclib import models

    out = tmp_path_factory.mktemp("tiny-qwen2")
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(models.resolve(TINY).path), dtype=torch.float32)
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(str(models.tokenizer_directory(TINY))).save_pretrained(out)
    return str(out)


@pytest.fixture(scope="session")
def sglang_tiny(sglang_python, tiny_model_dir, tmp_path_factory):
    """One real SGLang server (CPU engine) for the test session, on the tiny model."""
    from ttclib.serving import SGLangBackend

    backend = SGLangBackend(
        tiny_model_dir,
        device="cpu",
        dtype="float32",
        batch_size=16,
        log_path=tmp_path_factory.mktemp("sglang") / "server.log",
    )
    yield backend
    backend.close()
