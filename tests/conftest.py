"""Shared fixtures: a tiny random Llama with a byte tokenizer (fast, offline, real architecture)."""

import pytest


@pytest.fixture(scope="session")
def tiny_lm():
    from bench.models import load_model

    return load_model("random:tiny-llama", device="cpu", dtype="float32", seed=0)


@pytest.fixture()
def env(tmp_path, monkeypatch):
    """A private trident cache (adapters, embeddings, predictions) for one test; returns tmp_path."""
    monkeypatch.setenv("TRIDENT_CACHE", str(tmp_path / "cache"))
    return tmp_path
