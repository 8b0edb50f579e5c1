"""What every BERT-family task model shares: encoder, tokenizer, data loaders, export.

A task model is built from its config like every convai model; its parts come from the
registries by key:

* ``backbone``: a pretrained encoder (``nlp/minilm-l6-h384``, ``nlp/bert-base-uncased``...);
  once built, the model writes the encoder's Hugging Face config into ``backbone.hf_config``
  with ``init: config``, so the saved archive rebuilds it without the original folder;
* ``tokenizer``: ``nlp/hf_tokenizer`` on the encoder folder's ``tokenizer.json`` unless the
  config names another; its file is an artifact of the ``.convai`` archive;
* heads (``nlp/sequence_classifier``, ``nlp/token_classifier``), sized by the model;
* datasets (a data section's ``dataset`` key), given the tokenizer and label sets.

Data sections take, besides the dataset's own keys, ``batch_size``, ``shuffle``, ``seed`` and
``num_workers``; batches group sequences of similar length (less padding) and each DDP rank
draws its own share.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from omegaconf import DictConfig, OmegaConf

from convai_core.components import build
from convai_core.config_utils import to_plain
from convai_core.errors import ConfigError, ExportError
from convai_core.models.base import ModelBase
from convai_core.types import connect
from convai_nlp.data.batching import LengthBucketBatchSampler, collate
from convai_nlp.modules.encoder import (
    attention_mask_port,
    case_ids_port,
    token_ids_port,
    token_type_ids_port,
)

if TYPE_CHECKING:
    import pytorch_lightning as pl
    from torch.utils.data import DataLoader

    from convai_core.export_spec import ExportSpec
    from convai_core.types import NeuralType
    from convai_nlp.tokenizers import HFTokenizer

#: Keys of a data section that configure the loader, not the dataset.
LOADER_KEYS = ("dataset", "batch_size", "shuffle", "seed", "num_workers")
#: Config keys of tokenizer nodes that name files to store in the archive.
TOKENIZER_FILE_KEYS = ("tokenizer_file", "model_file")


class TransformerTaskModel(ModelBase):
    """Base of the NLP task models: encoder + tokenizer + heads (see the module docstring).

    Subclasses set :attr:`DEFAULT_DATASET`, build their heads in ``__init__`` after calling
    this one, and implement :meth:`forward`, :meth:`training_step` and validation.
    """

    SHARDS_ITS_OWN_DATA = True
    #: The dataset key a data section uses when it names none.
    DEFAULT_DATASET: ClassVar[str] = ""
    #: Label-set attributes (each also the config key it is read from) handed to datasets.
    LABEL_KEYS: ClassVar[tuple[str, ...]] = ()
    #: Whether inputs are text pairs (the encoder takes ``token_type_ids`` after the mask).
    PAIRS: ClassVar[bool] = False

    def __init__(self, cfg: DictConfig | Mapping[str, Any], trainer: pl.Trainer | None = None):
        super().__init__(cfg, trainer)
        if self.cfg.get("backbone") is None:
            raise ConfigError(
                "model.backbone is missing: name a pretrained encoder, e.g. "
                "model.backbone.name=nlp/minilm-l6-h384 (`convai list modules` lists them)."
            )
        self.backbone = build("modules", self.cfg.backbone, path="model.backbone")
        self.cfg.backbone.init = "config"
        self.cfg.backbone.hf_config = OmegaConf.create(self.backbone.hf_config)
        self.tokenizer: HFTokenizer = self._build_tokenizer()
        self._val_outputs: list[Any] = []

    # ------------------------------------------------------------------ parts
    def _build_tokenizer(self) -> HFTokenizer:
        node = self.cfg.get("tokenizer")
        if node is None:
            path = self.backbone.tokenizer_file()
            if path is None:
                raise ConfigError(
                    "model.tokenizer is missing and the encoder's folder has no tokenizer.json; "
                    "set model.tokenizer.name=nlp/hf_tokenizer and model.tokenizer.tokenizer_file."
                )
            self.cfg.tokenizer = {"name": "nlp/hf_tokenizer", "tokenizer_file": str(path)}
            node = self.cfg.tokenizer
        tokenizer = build("tokenizers", node, path="model.tokenizer")
        for key in TOKENIZER_FILE_KEYS:
            if node.get(key):
                self.register_artifact(f"tokenizer.{key}", node[key])
        if not hasattr(tokenizer, "encode_words"):
            raise ConfigError(
                f"model.tokenizer.name={node.get('name')!r} does not build encoder inputs "
                "(word ids, [CLS]/[SEP]); a BERT-family task needs nlp/hf_tokenizer."
            )
        tokenizer.max_length = min(tokenizer.max_length, self.backbone.max_positions)
        if self.cfg.get("max_seq_length"):  # longer inputs are cut into (overlapping) windows
            tokenizer.max_length = min(tokenizer.max_length, int(self.cfg.max_seq_length))
        return tokenizer

    def build_head(self, key: str, default: str, num_classes: int) -> torch.nn.Module:
        """Build head ``cfg.<key>`` (default registry key ``default``) and check its ports."""
        node = self.cfg.get(key)
        if node is None:
            self.cfg[key] = {"name": default}
            node = self.cfg[key]
        head = build(
            "modules",
            node,
            path=f"model.{key}",
            context={"hidden_size": self.backbone.hidden_size, "num_classes": num_classes},
        )
        connect(self.backbone, head, producer_name="model.backbone", consumer_name=f"model.{key}")
        return head

    def label_list(self, key: str, infer: Callable[[], list[str]]) -> list[str]:
        """The label set ``cfg.<key>``, inferred from the training data (and stored) when unset."""
        value = self.cfg.get(key)
        if value:
            labels = [str(v) for v in value]
        else:
            labels = infer()
            self.cfg[key] = labels
        if len(set(labels)) != len(labels):
            raise ConfigError(f"model.{key} repeats a label: {labels}")
        return labels

    def train_file(self, key: str) -> str:
        """A file key of ``train_ds`` (to infer labels from); a clear error when missing."""
        train = self.cfg.get("train_ds") or {}
        value = train.get(key)
        if not value:
            raise ConfigError(
                f"model.train_ds.{key} is needed to find the label set; set it, or give the "
                "labels in the config."
            )
        return str(value)

    # ------------------------------------------------------------------ ports
    @property
    def uses_case(self) -> bool:
        """Whether the encoder takes the letter case of each token (``case_ids``)."""
        return self.backbone.case_embedding is not None

    @property
    def input_ports(self) -> Mapping[str, NeuralType]:
        ports = {"input_ids": token_ids_port(), "attention_mask": attention_mask_port()}
        if self.PAIRS:
            ports["token_type_ids"] = token_type_ids_port(optional=False)
        if self.uses_case:
            ports["case_ids"] = case_ids_port(optional=False)
        return ports

    def encode(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """The encoder's token vectors of a batch dict. Shapes: -> (B, T, H)."""
        hidden: torch.Tensor = self.backbone(
            batch["input_ids"],
            batch["attention_mask"],
            batch.get("case_ids"),
            batch.get("token_type_ids"),
        )
        return hidden

    def inputs(self, batch: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, ...]:
        """The positional inputs of :meth:`forward` from a batch dict, in the order of
        :attr:`input_ports`: ids, mask, then segment ids (pair models), then case ids."""
        return tuple(batch[name] for name in self.input_ports)

    # ------------------------------------------------------------------ data
    def dataset_context(self) -> dict[str, Any]:
        """What the model hands to its datasets: the tokenizer and its :attr:`LABEL_KEYS`."""
        return {"tokenizer": self.tokenizer, **{key: getattr(self, key) for key in self.LABEL_KEYS}}

    def build_dataloader(self, data_cfg: DictConfig, split: str) -> DataLoader[Any]:
        from torch.utils.data import DataLoader

        section = f"model.{self.DATA_SECTIONS[split]}"
        plain = dict(to_plain(data_cfg))
        batch_size = int(plain.pop("batch_size", 32))
        shuffle = bool(plain.pop("shuffle", split == "train"))
        seed = int(plain.pop("seed", 0))
        num_workers = int(plain.pop("num_workers", 0))
        name = plain.pop("dataset", self.DEFAULT_DATASET)
        dataset = build(
            "datasets",
            {"name": name, **plain},
            path=section,
            context=self.dataset_context(),
            sibling_keys=LOADER_KEYS,
        )
        world, rank = 1, 0
        if self._trainer is not None:
            world, rank = int(self.trainer.world_size), int(self.trainer.global_rank)
        sampler = LengthBucketBatchSampler(
            dataset.lengths,
            batch_size,
            shuffle=shuffle,
            seed=seed,
            num_replicas=world,
            rank=rank,
        )
        return DataLoader(
            dataset,
            batch_sampler=sampler,
            collate_fn=functools.partial(collate, pad_id=self.tokenizer.pad_id),
            num_workers=num_workers,
        )

    def on_fit_start(self) -> None:
        self.train()  # inference calls (classify, evaluate) may have left parts in eval mode

    def on_train_epoch_start(self) -> None:
        loader = self.trainer.train_dataloader
        sampler = getattr(loader, "batch_sampler", None)
        if isinstance(sampler, LengthBucketBatchSampler):
            sampler.set_epoch(self.current_epoch)

    def on_validation_epoch_start(self) -> None:
        self._val_outputs = []

    def gather_objects(self, value: list[Any]) -> list[Any]:
        """``value`` of every DDP rank, concatenated (the value itself without DDP)."""
        if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
            return value
        parts: list[Any] = [None] * torch.distributed.get_world_size()
        torch.distributed.all_gather_object(parts, value)
        return [item for part in parts for item in part]

    # ------------------------------------------------------------------ inference
    def encoded_batches(
        self, encoded: Sequence[Any], batch_size: int
    ) -> Iterator[tuple[list[int], dict[str, torch.Tensor]]]:
        """Batches of encoder inputs, longest first (less padding), with the items' indices."""
        order = sorted(range(len(encoded)), key=lambda i: -len(encoded[i].ids))
        device = next(self.parameters()).device
        for start in range(0, len(order), batch_size):
            indices = order[start : start + batch_size]
            items = []
            for i in indices:
                item = {"input_ids": encoded[i].ids, "case_ids": encoded[i].case_ids}
                if encoded[i].type_ids is not None:
                    item["token_type_ids"] = encoded[i].type_ids
                items.append(item)
            batch = collate(items, self.tokenizer.pad_id)
            yield indices, {k: v.to(device) for k, v in batch.items()}

    # ------------------------------------------------------------------ export
    def export_spec(self, **options: Any) -> ExportSpec:
        """Export :meth:`forward` (token ids and mask in, logits out), checked on random text."""
        from convai_core.export_spec import ExportSpec, item_lengths
        from convai_nlp.tokenizers import NUM_CASES

        if options:
            raise ExportError(
                f"{type(self).__name__} takes no export options; got {sorted(options)}"
            )
        tokenizer = self.tokenizer
        low = max(tokenizer.cls_id, tokenizer.sep_id, tokenizer.pad_id) + 1

        names = list(self.input_ports)

        def make_inputs(batch: int, length: int, kind: str) -> tuple[torch.Tensor, ...]:
            if kind != "random":
                raise ValueError(f"only random inputs, not {kind!r}")
            generator = torch.Generator().manual_seed(1000 * batch + length)
            ids = torch.randint(low, tokenizer.vocab_size, (batch, length), generator=generator)
            cases = torch.randint(1, NUM_CASES, (batch, length), generator=generator)
            mask = torch.zeros((batch, length), dtype=torch.long)
            types = torch.zeros((batch, length), dtype=torch.long)
            for row, n in enumerate(item_lengths(batch, length)):
                ids[row, 0], ids[row, n - 1] = tokenizer.cls_id, tokenizer.sep_id
                ids[row, n:] = tokenizer.pad_id
                cases[row, 0], cases[row, n - 1 :] = 0, 0
                mask[row, :n] = 1
                types[row, n // 2 : n] = 1  # the second text of a pair
            tensors = {
                "input_ids": ids,
                "attention_mask": mask,
                "token_type_ids": types,
                "case_ids": cases,
            }
            return tuple(tensors[name] for name in names)

        model = self

        class _Forward(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.inner = model

            def forward(self, *inputs: torch.Tensor) -> Any:
                return self.inner(*inputs)

        self.eval()
        return ExportSpec(
            name=str(self.cfg.name).replace("/", "_"),
            module=_Forward().eval(),
            input_ports=dict(self.input_ports),
            output_ports=dict(self.output_ports),
            make_inputs=make_inputs,
            verify_lengths=[16, 64],
            dim_bounds={"batch": (1, 1 << 16), "token": (2, self.backbone.max_positions)},
            metadata=self.export_metadata(),
            artifacts={"tokenizer.json": self.tokenizer.tokenizer_file},
            input_kinds=("random",),
        )

    def export_metadata(self) -> dict[str, Any]:
        """What a runtime needs beside the graph (label sets, token ids)."""
        return {
            "task": str(self.cfg.name),
            "pad_id": self.tokenizer.pad_id,
            "cls_id": self.tokenizer.cls_id,
            "sep_id": self.tokenizer.sep_id,
            "max_length": self.tokenizer.max_length,
        }
