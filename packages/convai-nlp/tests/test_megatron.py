"""Megatron-BERT and BioMegatron backbones: built from the catalog's architecture, offline."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from convai_core.errors import ConfigError
from convai_nlp.backbones import CATALOG
from convai_nlp.modules.encoder import TransformerEncoder

TINY = {
    "num_hidden_layers": 2,
    "hidden_size": 32,
    "num_attention_heads": 2,
    "intermediate_size": 64,
    "vocab_size": 100,
    "max_position_embeddings": 64,
}


def test_megatron_builds_from_the_catalog_architecture() -> None:
    from transformers import MegatronBertModel

    torch.manual_seed(0)
    encoder = TransformerEncoder(catalog_name="megatron-bert-345m", init="config", hf_config=TINY)
    assert isinstance(encoder.model, MegatronBertModel)
    assert encoder.hidden_size == 32 and encoder.max_positions == 64
    # the keys the override leaves out come from the catalog entry
    assert encoder.hf_config["model_type"] == "megatron-bert"
    assert encoder.hf_config["type_vocab_size"] == 2
    input_ids = torch.randint(0, 100, (3, 7))  # (B, T)
    attention_mask = torch.ones(3, 7, dtype=torch.long)
    attention_mask[1, 5:] = 0
    hidden = encoder(input_ids=input_ids, attention_mask=attention_mask)
    assert hidden.shape == (3, 7, 32)
    assert torch.isfinite(hidden).all()
    # what a task model records rebuilds the same architecture without the catalog's help
    again = TransformerEncoder(catalog_name="unknown", init="config", hf_config=encoder.hf_config)
    assert type(again.model) is MegatronBertModel and again.hidden_size == 32


def test_init_config_without_hf_config_needs_a_catalog_architecture() -> None:
    with pytest.raises(ConfigError, match=r"needs model.backbone.hf_config .* nlp/roberta-base"):
        TransformerEncoder(catalog_name="roberta-base", init="config")


def _encoder_parameters(config: dict[str, int]) -> int:
    """Parameters of a Megatron-BERT encoder without pooler, from its sizes alone.

    Megatron-BERT normalises before each block (one LayerNorm before attention, one before
    the feed-forward) and once after the last layer, and has no LayerNorm on the embeddings.
    """
    hidden, ffn = config["hidden_size"], config["intermediate_size"]
    embeddings = (
        config["vocab_size"] + config["max_position_embeddings"] + config["type_vocab_size"]
    ) * hidden
    layer_norm = 2 * hidden
    attention = 4 * (hidden * hidden + hidden)  # query, key, value and output projections
    feed_forward = hidden * ffn + ffn + ffn * hidden + hidden
    per_layer = 2 * layer_norm + attention + feed_forward
    return embeddings + config["num_hidden_layers"] * per_layer + layer_norm


@pytest.mark.parametrize("name", ["megatron-bert-345m", "biomegatron-345m"])
def test_the_345m_architecture(name: str) -> None:
    config = dict(CATALOG[name].hf_config or {})
    assert config["model_type"] == "megatron-bert"
    sizes = {
        key: config[key]
        for key in (
            "num_hidden_layers",
            "hidden_size",
            "num_attention_heads",
            "intermediate_size",
            "max_position_embeddings",
            "vocab_size",
        )
    }
    assert sizes == {
        "num_hidden_layers": 24,
        "hidden_size": 1024,
        "num_attention_heads": 16,
        "intermediate_size": 4096,
        "max_position_embeddings": 512,
        "vocab_size": 30592,  # BERT's 30,522 uncased pieces padded to a multiple of 128
    }
    assert config["vocab_size"] % 128 == 0 and config["vocab_size"] - 30522 < 128
    expected = _encoder_parameters(config)
    assert expected == 334_163_968  # about 345M with the pooler and pretraining heads
    # built on the meta device: shapes without memory, so the count is checked for free
    with torch.device("meta"):
        encoder = TransformerEncoder(catalog_name=name, init="config")
    assert type(encoder.model).__name__ == "MegatronBertModel"
    assert encoder.hidden_size == 1024
    assert sum(p.numel() for p in encoder.parameters()) == expected


def test_pretrained_biomegatron_offline_names_folder_and_hub(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONVAI_CACHE", str(tmp_path))
    with pytest.raises(ConfigError) as info:
        TransformerEncoder(catalog_name="biomegatron-345m", init="pretrained")
    message = str(info.value)
    assert str(tmp_path / "lm" / "biomegatron-345m") in message
    assert "EMBO/BioMegatron345mUncased" in message
    assert "model.safetensors" in message and "config.json" in message


def test_biomegatron_ner_config() -> None:
    folder = resources.files("convai_nlp.conf") / "model" / "nlp"
    config = OmegaConf.load(str(folder / "biomegatron_ner.yaml"))
    token_classification = OmegaConf.load(str(folder / "token_classification.yaml"))
    assert config.name == "nlp/token_classification"
    assert config.backbone.name == "nlp/biomegatron-345m"
    assert set(config) == set(token_classification)
    assert set(config.backbone) == set(token_classification.backbone)
    assert "$CONVAI_CACHE/lm/biomegatron-345m" in (folder / "biomegatron_ner.yaml").read_text()
