"""Shared fixtures: a tiny random Llama with a byte tokenizer (fast, offline, real architecture)."""

import pytest


@pytest.fixture(scope="session")
def tiny_lm():
    from bench.models import load_model

    return load_model("random:tiny-llama", device="cpu", dtype="float32", seed=0)
