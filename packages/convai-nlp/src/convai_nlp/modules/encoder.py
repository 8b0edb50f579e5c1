"""A Hugging Face transformer as a convai module: token ids in, one vector per token out."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from convai_core.errors import ConfigError
from convai_core.types import Axis, AxisKind, EncodedRepresentation, Mask, NeuralType, TokenIds

INIT_MODES = ("pretrained", "config")


def token_ids_port() -> NeuralType:
    return NeuralType((Axis(AxisKind.BATCH), Axis(AxisKind.TOKEN)), TokenIds())


def attention_mask_port() -> NeuralType:
    return NeuralType((Axis(AxisKind.BATCH), Axis(AxisKind.TOKEN)), Mask())


def token_type_ids_port(optional: bool = True) -> NeuralType:
    """Segment ids of a text pair (0: first text, 1: second), as BERT's pair inputs."""
    return NeuralType((Axis(AxisKind.BATCH), Axis(AxisKind.TOKEN)), TokenIds(), optional=optional)


def case_ids_port(optional: bool = True) -> NeuralType:
    return NeuralType((Axis(AxisKind.BATCH), Axis(AxisKind.TOKEN)), TokenIds(), optional=optional)


class TransformerEncoder(nn.Module):
    """A pretrained BERT-family encoder (``transformers.AutoModel``) from the catalog.

    Args:
        catalog_name: the catalog entry (set by the registry key, ``nlp/<name>``).
        path: a local folder with ``config.json`` and ``model.safetensors`` (default: the
            cache, see :mod:`convai_nlp.backbones`).
        init: ``pretrained`` loads the weights from the folder; ``config`` builds the
            architecture from ``hf_config`` with fresh weights (what a restored archive does
            before loading its own weights).
        hf_config: the Hugging Face config as a dict, for ``init: config``. Laid over the
            catalog entry's own architecture when it has one
            (:attr:`~convai_nlp.backbones.BackboneSpec.hf_config`: then it may be left out, or
            give only the keys to change); needed in full otherwise.
        hidden_dropout: overrides the config's ``hidden_dropout_prob`` when set.
        attention_dropout: overrides ``attention_probs_dropout_prob`` when set.
        num_layers: keep only the first ``num_layers`` transformer layers of the encoder (the
            rest of its pretrained weights are not loaded): a shallower, faster model that
            trades some accuracy for speed. ``None`` keeps them all.
        freeze_layers: keep the input embeddings and the first ``freeze_layers`` transformer
            layers at their pretrained weights (no gradient, no optimizer state): a step
            back-propagates through the upper layers only, faster on a CPU and less prone to
            forget on small data. ``0`` trains them all.
        case_embedding: add a learned vector per letter case class
            (:func:`~convai_nlp.tokenizers.case_class`) to each token's input embedding. It gives
            an uncased encoder (MiniLM, BERT uncased) back what its tokenizer lowered, which
            named-entity recognition needs; the vectors start at zero, so training starts from
            the pretrained encoder unchanged.

    Shapes:
        input_ids (B, T), attention_mask (B, T), case_ids (B, T) optional, token_type_ids
        (B, T) optional -> hidden (B, T, H).
    """

    def __init__(
        self,
        catalog_name: str,
        path: str | None = None,
        init: str = "pretrained",
        hf_config: Mapping[str, Any] | None = None,
        hidden_dropout: float | None = None,
        attention_dropout: float | None = None,
        case_embedding: bool = False,
        num_layers: int | None = None,
        freeze_layers: int = 0,
    ) -> None:
        super().__init__()
        import transformers

        from convai_nlp.backbones import CATALOG, backbone_folder, read_hf_config

        if init not in INIT_MODES:
            raise ConfigError(f"model.backbone.init={init!r}: use one of {', '.join(INIT_MODES)}")
        self.catalog_name = catalog_name
        self.folder: Path | None = None
        if init == "pretrained":
            self.folder = backbone_folder(catalog_name, path)
            config_dict = read_hf_config(self.folder)
        else:
            spec = CATALOG.get(catalog_name)
            architecture = spec.hf_config if spec is not None else None
            if not hf_config and not architecture:
                raise ConfigError(
                    "model.backbone.init=config needs model.backbone.hf_config (the Hugging Face "
                    f"config of the encoder; the catalog has none for nlp/{catalog_name}); use "
                    "init=pretrained to load a folder."
                )
            # the catalog's architecture, with what the config gives laid over it
            config_dict = {**dict(architecture or {}), **dict(hf_config or {})}
        self.hf_config: dict[str, Any] = dict(config_dict)
        overrides: dict[str, Any] = {}
        if hidden_dropout is not None:
            overrides["hidden_dropout_prob"] = float(hidden_dropout)
        if attention_dropout is not None:
            overrides["attention_probs_dropout_prob"] = float(attention_dropout)
        model_type = config_dict.get("model_type")
        if not model_type:
            raise ConfigError(f"backbone nlp/{catalog_name}: its config.json has no model_type")
        kwargs = {k: v for k, v in config_dict.items() if k != "model_type"}
        kwargs.update(overrides)
        config = transformers.AutoConfig.for_model(model_type, **kwargs)
        if num_layers is not None:
            depth = int(getattr(config, "num_hidden_layers", 0) or 0)
            if not 1 <= int(num_layers) <= depth:
                raise ConfigError(
                    f"model.backbone.num_layers={num_layers}: nlp/{catalog_name} has {depth} "
                    f"layers; keep between 1 and {depth} (or null for all)"
                )
            config.num_hidden_layers = int(num_layers)  # DistilBERT's n_layers through its alias
        model_class: Any = transformers.AutoModel._model_mapping[type(config)]
        # PyTorch's fused attention where the architecture supports it (BERT, RoBERTa...)
        config._attn_implementation = "sdpa" if model_class._supports_sdpa else "eager"
        # BERT-style encoders carry a pooler that token tasks never use; DistilBERT has none
        extra = {}
        if "add_pooling_layer" in inspect.signature(model_class.__init__).parameters:
            extra["add_pooling_layer"] = False
        if self.folder is not None:
            verbosity = transformers.logging.get_verbosity()
            transformers.logging.set_verbosity_error()  # the unused pooler is not news
            transformers.logging.disable_progress_bar()
            try:
                self.model = model_class.from_pretrained(
                    str(self.folder), config=config, use_safetensors=True, **extra
                )
            finally:
                transformers.logging.set_verbosity(verbosity)
                transformers.logging.enable_progress_bar()
        else:
            self.model = model_class(config, **extra)
        self.model.train()  # from_pretrained returns it in eval mode (dropout off)
        self.hidden_size = int(config.hidden_size)
        self.max_positions = int(getattr(config, "max_position_embeddings", 512))
        self.type_vocab_size = int(getattr(config, "type_vocab_size", 0) or 0)
        self.case_embedding: nn.Embedding | None = None
        if case_embedding:
            from convai_nlp.tokenizers import NUM_CASES

            self.case_embedding = nn.Embedding(NUM_CASES, self.hidden_size)
            nn.init.zeros_(self.case_embedding.weight)
        self.freeze_layers = int(freeze_layers)
        if self.freeze_layers:
            self._freeze(catalog_name)

    def _freeze(self, catalog_name: str) -> None:
        """Stop the gradient of the input embeddings and the first ``freeze_layers`` layers."""
        # BERT, RoBERTa, Megatron-BERT: encoder.layer; DistilBERT: transformer.layer
        stack = getattr(getattr(self.model, "encoder", None), "layer", None)
        if stack is None:
            stack = getattr(getattr(self.model, "transformer", None), "layer", None)
        embeddings = getattr(self.model, "embeddings", None)
        if not isinstance(stack, nn.ModuleList) or embeddings is None:
            raise ConfigError(
                f"model.backbone.freeze_layers={self.freeze_layers}: nlp/{catalog_name} has no "
                "separate layers to freeze (ALBERT shares one layer's weights); use 0"
            )
        if not 0 <= self.freeze_layers <= len(stack):
            raise ConfigError(
                f"model.backbone.freeze_layers={self.freeze_layers}: nlp/{catalog_name} has "
                f"{len(stack)} layers; freeze between 0 and {len(stack)}"
            )
        for module in (embeddings, *stack[: self.freeze_layers]):
            for parameter in module.parameters():
                parameter.requires_grad_(False)

    @property
    def input_ports(self) -> Mapping[str, NeuralType]:
        return {
            "input_ids": token_ids_port(),
            "attention_mask": attention_mask_port(),
            "case_ids": case_ids_port(),
            "token_type_ids": token_type_ids_port(),
        }

    @property
    def output_ports(self) -> Mapping[str, NeuralType]:
        return {
            "hidden": NeuralType(
                (
                    Axis(AxisKind.BATCH),
                    Axis(AxisKind.TOKEN),
                    Axis(AxisKind.CHANNEL, self.hidden_size),
                ),
                EncodedRepresentation(),
            )
        }

    def tokenizer_file(self) -> Path | None:
        """The folder's ``tokenizer.json``, if the encoder was loaded from a folder that has one."""
        if self.folder is not None and (self.folder / "tokenizer.json").is_file():
            return self.folder / "tokenizer.json"
        return None

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        case_ids: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Shapes: input_ids (B, T), attention_mask (B, T), case_ids (B, T), token_type_ids
        (B, T) -> hidden (B, T, H).

        ``case_ids`` are used when the encoder has a case embedding (and then required);
        ``token_type_ids`` (the segment of each token of a text pair) when given and the
        architecture has segments (BERT does, DistilBERT does not).
        """
        extra = {}
        if token_type_ids is not None and self.type_vocab_size > 1:
            extra["token_type_ids"] = token_type_ids
        if self.case_embedding is None:
            output = self.model(input_ids=input_ids, attention_mask=attention_mask, **extra)
        else:
            if case_ids is None:
                raise ValueError("this encoder has a case embedding: pass case_ids too")
            embeddings = self.model.get_input_embeddings()(input_ids)  # (B, T) -> (B, T, H)
            embeddings = embeddings + self.case_embedding(case_ids)
            output = self.model(inputs_embeds=embeddings, attention_mask=attention_mask, **extra)
        hidden: torch.Tensor = output.last_hidden_state
        return hidden
