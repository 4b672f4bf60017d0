import pytest

from bench import models
from bench.models import ModelError, choose_dtype, fingerprint, load_model


def test_local_directory_stands_in_for_a_hub_model(tmp_path, tiny_lm):
    tiny_lm.model.save_pretrained(tmp_path)
    tiny_lm.tokenizer.save_pretrained(tmp_path)
    lm = load_model(str(tmp_path), device="cpu", dtype="float32")
    assert lm.tokenizer.chat_template and lm.tokenizer.pad_token_id is not None
    assert fingerprint(str(tmp_path)).startswith("dir:")
    assert sum(p.numel() for p in lm.model.parameters()) == sum(p.numel() for p in tiny_lm.model.parameters())


def test_unreachable_hub_id_gives_one_clear_line(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelError, match="cannot load model 'nobody/no-such-model' from the hub"):
        load_model("nobody/no-such-model", device="cpu", dtype="float32")


def test_unknown_random_architecture_suggests_known_ones():
    with pytest.raises(ModelError, match="did you mean 'tiny-llama'"):
        load_model("random:tiny-lama")


def test_dtype_choice(monkeypatch):
    assert choose_dtype("cuda") == "bfloat16"
    monkeypatch.setattr(models, "cpu_has_native_bf16", lambda: True)
    assert choose_dtype("cpu") == "bfloat16"
    monkeypatch.setattr(models, "cpu_has_native_bf16", lambda: False)
    assert choose_dtype("cpu") == "float32"
    assert choose_dtype("cpu", "float32") == "float32"
    with pytest.raises(ModelError):
        choose_dtype("cpu", "fp8")


def test_random_models_are_seeded():
    a = load_model("random:tiny-llama", dtype="float32", seed=1).model
    b = load_model("random:tiny-llama", dtype="float32", seed=1).model
    assert all((x == y).all() for x, y in zip(a.parameters(), b.parameters()))
