"""Registry builders of the convolutional encoders: a config node per published architecture.

``asr/quartznet_encoder`` and ``asr/jasper_encoder`` build a
:class:`~convai_asr.modules.jasper.JasperEncoder` from short config nodes::

    encoder: {name: asr/quartznet_encoder, b: 15, r: 5, dropout: 0.0}
    encoder: {name: asr/jasper_encoder, blocks: jasper_10x5}
    encoder: {name: asr/jasper_encoder, blocks: [{filters: 256, kernel: 11, stride: 2}, ...]}

``feat_in`` comes from the model (its preprocessor's mel bins), never from the config.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from convai_asr.modules.jasper import JasperEncoder, jasper_10x5_blocks, quartznet_blocks

__all__ = ["NAMED_BLOCK_LISTS", "jasper_encoder", "quartznet_encoder"]

#: Block lists that ``asr/jasper_encoder`` accepts by name.
NAMED_BLOCK_LISTS = {"jasper_10x5": jasper_10x5_blocks}


def quartznet_encoder(feat_in: int, b: int = 15, r: int = 5, dropout: float = 0.0) -> JasperEncoder:
    """QuartzNet BxR (Kriman et al., 2020) on ``feat_in`` mel bins.

    Args:
        feat_in: input feature bins (supplied by the model).
        b: blocks B, a positive multiple of 5.
        r: sub-blocks per block R.
        dropout: dropout of every block.

    Shapes:
        audio_signal: (B, feat_in, T), length: (B,) -> encoded: (B, 1024, T / 2), (B,).
    """
    return JasperEncoder(feat_in=feat_in, blocks=quartznet_blocks(b, r, dropout=dropout))


def jasper_encoder(feat_in: int, blocks: str | Sequence[Mapping[str, Any]]) -> JasperEncoder:
    """A Jasper-style encoder from an explicit block list or a named one (``jasper_10x5``).

    Args:
        feat_in: input feature bins (supplied by the model).
        blocks: block dicts (see :class:`~convai_asr.modules.jasper.JasperEncoder`) or the name
            of a published list.

    Raises:
        ValueError: an unknown block-list name or an empty list.
    """
    if isinstance(blocks, str):
        if blocks not in NAMED_BLOCK_LISTS:
            raise ValueError(
                f"blocks={blocks!r} is not a named block list; use one of "
                f"{sorted(NAMED_BLOCK_LISTS)} or give the list of block dicts."
            )
        block_list = NAMED_BLOCK_LISTS[blocks]()
    else:
        block_list = [dict(block) for block in blocks]
    if not block_list:
        raise ValueError("blocks is empty; give at least one block dict.")
    return JasperEncoder(feat_in=feat_in, blocks=block_list)
