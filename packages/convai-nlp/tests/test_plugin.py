"""convai-nlp registers its tasks, parts and commands through the `convai` entry-point group."""

from __future__ import annotations

import subprocess
import sys

from convai_core.plugins import load_plugins


def test_plugin_registers_tasks_backbones_tokenizers_and_datasets() -> None:
    loaded = load_plugins(reload=True)
    info = next(i for i in loaded.plugins if i.distribution == "convai-nlp")
    assert info.status == "loaded" and info.module == "convai_nlp.plugin"
    regs = loaded.registries
    for task in (
        "text_classification",
        "token_classification",
        "punctuation_capitalization",
        "intent_slot",
    ):
        assert f"nlp/{task}" in regs["models"], task
        assert f"nlp/{task}" in regs["datasets"], task
        assert regs["models"].get(f"nlp/{task}").metadata["config"] == f"nlp/{task}"
    for task, dataset, config in (
        ("question_answering", "nlp/squad", "nlp/question_answering"),
        ("glue", "nlp/glue", "nlp/glue"),
        ("relation_extraction", "nlp/relations", "nlp/relation_extraction"),
    ):
        assert regs["models"].get(f"nlp/{task}").metadata["config"] == config
        assert dataset in regs["datasets"]
    assert "nlp/span_head" in regs["modules"]
    for backbone in ("minilm-l6-h384", "bert-base-uncased", "roberta-base", "megatron-bert-345m"):
        assert f"nlp/{backbone}" in regs["modules"]
    for key in ("nlp/hf_tokenizer", "nlp/sentencepiece", "nlp/char", "nlp/word"):
        assert key in regs["tokenizers"]
    assert "nlp" in regs["commands"]


def test_listing_backbones_imports_no_torch() -> None:
    code = (
        "import sys\n"
        "from convai_core.cli import main\n"
        "main(['models'])\n"
        "assert 'torch' not in sys.modules and 'transformers' not in sys.modules\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "nlp/minilm-l6-h384" in result.stdout and "nlp/token_classification" in result.stdout
    assert "nlp/question_answering" in result.stdout and "nlp/glue" in result.stdout


def test_a_backbone_without_weights_says_what_to_download(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import pytest

    from convai_core.errors import ConfigError
    from convai_nlp.backbones import backbone_folder

    monkeypatch.setenv("CONVAI_CACHE", str(tmp_path))
    with pytest.raises(ConfigError) as info:
        backbone_folder("bert-base-uncased")
    message = str(info.value)
    assert "bert-base-uncased" in message and str(tmp_path / "lm" / "bert-base-uncased") in message
    assert "model.safetensors" in message and "model.backbone.path" in message


def test_num_layers_keeps_the_first_pretrained_layers() -> None:
    """model.backbone.num_layers=N: the first N layers with their pretrained weights; a depth
    the encoder does not have is a config error naming the key."""
    import pytest
    import torch

    from convai_core.errors import ConfigError
    from convai_nlp.modules.encoder import TransformerEncoder

    full = TransformerEncoder("minilm-l6-h384")
    short = TransformerEncoder("minilm-l6-h384", num_layers=2)
    assert len(full.model.encoder.layer) == 6 and len(short.model.encoder.layer) == 2
    for index in range(2):
        a, b = full.model.encoder.layer[index], short.model.encoder.layer[index]
        for (name, p), (_, q) in zip(a.named_parameters(), b.named_parameters(), strict=True):
            assert torch.equal(p, q), (index, name)
    ids = torch.tensor([[101, 7592, 2088, 102]])
    mask = torch.ones_like(ids)
    full.eval(), short.eval()
    with torch.no_grad():
        # the truncated encoder's output is the full encoder's hidden state after layer 2
        expected = full.model(input_ids=ids, attention_mask=mask, output_hidden_states=True)
        got = short(input_ids=ids, attention_mask=mask)
    assert torch.allclose(got, expected.hidden_states[2], atol=1e-5)
    with pytest.raises(ConfigError, match=r"model.backbone.num_layers=7: .* has 6 layers"):
        TransformerEncoder("minilm-l6-h384", num_layers=7)


def test_freeze_layers_trains_only_the_upper_layers() -> None:
    """model.backbone.freeze_layers=N: after an optimizer step the embeddings and the first N
    layers hold their pretrained weights and the others moved; a count the encoder does not
    have is a config error naming the key."""
    import pytest
    import torch

    from convai_core.errors import ConfigError
    from convai_nlp.modules.encoder import TransformerEncoder

    torch.manual_seed(0)
    encoder = TransformerEncoder("minilm-l6-h384", freeze_layers=2, case_embedding=True)
    before = {name: p.detach().clone() for name, p in encoder.named_parameters()}
    trainable = [p for p in encoder.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(trainable, lr=0.1)
    ids = torch.tensor([[101, 7592, 2088, 102], [101, 2088, 102, 0]])
    mask = (ids != 0).long()
    encoder(ids, mask, case_ids=torch.ones_like(ids)).pow(2).mean().backward()
    optimizer.step()
    moved = {name for name, p in encoder.named_parameters() if not torch.equal(p, before[name])}
    frozen = ("model.embeddings.", "model.encoder.layer.0.", "model.encoder.layer.1.")
    assert not any(name.startswith(frozen) for name in moved), sorted(moved)[:5]
    for index in range(2, 6):
        assert any(name.startswith(f"model.encoder.layer.{index}.") for name in moved), index
    assert "case_embedding.weight" in moved  # a new part always trains
    with pytest.raises(ConfigError, match=r"model.backbone.freeze_layers=7: .* has 6 layers"):
        TransformerEncoder("minilm-l6-h384", freeze_layers=7)
