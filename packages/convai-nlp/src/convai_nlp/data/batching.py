"""Batches of token sequences: padding and a length-bucketing, DDP-aware batch sampler.

A dataset item is a dict with ``input_ids`` (a list of ints) and label fields, each an int (one
label per sequence), a float (one regression target) or a list of ints aligned to
``input_ids`` (``-100``: no label there).
:func:`collate` turns a list of items into the batch dict:

===================  ==========  =====================================================
key                  shape       meaning
===================  ==========  =====================================================
``input_ids``        (B, T)      token ids, padded with the tokenizer's pad id
``attention_mask``   (B, T)      1 on real tokens, 0 on padding
``case_ids``         (B, T)      letter case of each token's text (0 on specials and padding)
``token_type_ids``   (B, T)      segment of each token of a text pair (items that have it)
``<label field>``    (B,)        one class id per sequence (long), or one score (float)
``<label field>``    (B, T)      one class id per token, ``-100`` where there is none
===================  ==========  =====================================================

B: batch, T: tokens of the longest sequence in the batch.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator, Sequence
from typing import Any

import torch

IGNORE_INDEX = -100
#: Per-token input fields (not labels), padded with 0.
INPUT_FIELDS = ("case_ids", "token_type_ids")


def collate(items: Sequence[dict[str, Any]], pad_id: int) -> dict[str, torch.Tensor]:
    """Pad a list of items into the batch dict described in the module docstring."""
    longest = max(len(item["input_ids"]) for item in items)
    input_ids = torch.full((len(items), longest), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((len(items), longest), dtype=torch.long)
    for row, item in enumerate(items):
        n = len(item["input_ids"])
        input_ids[row, :n] = torch.tensor(item["input_ids"], dtype=torch.long)
        attention_mask[row, :n] = 1
    batch = {"input_ids": input_ids, "attention_mask": attention_mask}
    for key, value in items[0].items():
        if key == "input_ids" or key.startswith("_"):
            continue
        if isinstance(value, int):
            batch[key] = torch.tensor([item[key] for item in items], dtype=torch.long)
        elif isinstance(value, float):  # a regression target
            batch[key] = torch.tensor([item[key] for item in items], dtype=torch.float32)
        else:
            fill = 0 if key in INPUT_FIELDS else IGNORE_INDEX
            padded = torch.full((len(items), longest), fill, dtype=torch.long)
            for row, item in enumerate(items):
                padded[row, : len(item[key])] = torch.tensor(item[key], dtype=torch.long)
            batch[key] = padded
    return batch


class LengthBucketBatchSampler(torch.utils.data.Sampler[list[int]]):
    """Batches of items of similar length (less padding), reshuffled every epoch.

    Items are shuffled, cut into pools of ``pool_batches`` batches, sorted by length inside
    each pool and batched; the batches are shuffled again. Under DDP each of ``num_replicas``
    ranks takes every ``num_replicas``-th batch, all ranks the same number.

    Args:
        lengths: the length of each item.
        batch_size: items per batch.
        shuffle: shuffle (training); False keeps the items in order, batched.
        seed: base seed; the epoch is added (:meth:`set_epoch`).
        num_replicas: DDP world size.
        rank: this process's rank.
        pool_batches: batches per sorting pool.
    """

    def __init__(
        self,
        lengths: Sequence[int],
        batch_size: int,
        *,
        shuffle: bool,
        seed: int = 0,
        num_replicas: int = 1,
        rank: int = 0,
        pool_batches: int = 50,
    ) -> None:
        self.lengths = list(lengths)
        self.batch_size = max(1, int(batch_size))
        self.shuffle = shuffle
        self.seed = int(seed)
        self.num_replicas = max(1, int(num_replicas))
        self.rank = int(rank)
        self.pool = max(1, int(pool_batches)) * self.batch_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def _batches(self) -> list[list[int]]:
        order = list(range(len(self.lengths)))
        if not self.shuffle:
            return [order[i : i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        rng = random.Random(self.seed + self.epoch)
        rng.shuffle(order)
        batches: list[list[int]] = []
        for start in range(0, len(order), self.pool):
            pool = sorted(order[start : start + self.pool], key=lambda i: self.lengths[i])
            batches += [pool[i : i + self.batch_size] for i in range(0, len(pool), self.batch_size)]
        rng.shuffle(batches)
        return batches

    def __iter__(self) -> Iterator[list[int]]:
        batches = self._batches()
        if self.num_replicas > 1:
            per_rank = math.ceil(len(batches) / self.num_replicas)
            batches = (batches * 2)[: per_rank * self.num_replicas]  # equal counts per rank
            batches = batches[self.rank :: self.num_replicas]
        return iter(batches)

    def __len__(self) -> int:
        count = math.ceil(len(self.lengths) / self.batch_size)
        return math.ceil(count / self.num_replicas)
