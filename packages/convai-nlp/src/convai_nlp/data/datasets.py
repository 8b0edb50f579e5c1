"""Dataset builders (``datasets`` registry) of the NLP tasks: tokenized, label-aligned items.

Items follow :mod:`convai_nlp.data.batching`: ``input_ids`` plus label fields. Word-level labels
go on the first sub-token of each word and ``-100`` on the others (and on ``[CLS]``/``[SEP]``),
so a word gets exactly one prediction. Sentences longer than the tokenizer's ``max_length`` are
cut into consecutive windows of whole words.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from convai_nlp.data.batching import IGNORE_INDEX
from convai_nlp.data.readers import (
    read_intent_slot,
    read_text_classification,
    read_token_classification,
)
from convai_nlp.errors import DataError
from convai_nlp.tokenizers import Encoded, HFTokenizer


class ListDataset(list[dict[str, Any]]):
    """A map-style dataset that is a list of item dicts, with the items' lengths at hand."""

    @property
    def lengths(self) -> list[int]:
        return [len(item["input_ids"]) for item in self]


def _label_index(labels: Sequence[str]) -> dict[str, int]:
    return {label: i for i, label in enumerate(labels)}


def text_classification_dataset(
    file: str,
    tokenizer: HFTokenizer,
    labels: Sequence[str],
    skip_bad: bool = False,
    max_words: int | None = None,
) -> ListDataset:
    """Items ``{input_ids, label, index}`` of a ``sentence<TAB>label`` file
    (``nlp/text_classification``); ``index`` is the item's place in the file."""
    rows = read_text_classification(file, labels=labels, skip_bad=skip_bad, max_words=max_words)
    index = _label_index(labels)
    encoded = tokenizer.encode_texts([text for text, _ in rows])
    return ListDataset(
        {"input_ids": e.ids, "case_ids": e.case_ids, "label": index[label], "index": i}
        for i, (e, (_, label)) in enumerate(zip(encoded, rows, strict=True))
    )


def word_windows(token_counts: Sequence[int], budget: int) -> list[tuple[int, int]]:
    """Consecutive ``(start, end)`` word ranges whose sub-token counts fit ``budget`` each.

    A single word longer than the budget gets a window of its own (its tokens are cut).
    """
    windows: list[tuple[int, int]] = []
    start, used = 0, 0
    for i, count in enumerate(token_counts):
        if used + count > budget and i > start:
            windows.append((start, i))
            start, used = i, 0
        used += count
    if start < len(token_counts):
        windows.append((start, len(token_counts)))
    return windows


def overlapping_windows(token_counts: Sequence[int], budget: int) -> list[tuple[int, int]]:
    """Word ranges that fit ``budget`` tokens, each starting halfway into the one before."""
    windows: list[tuple[int, int]] = []
    start = 0
    while start < len(token_counts):
        end = word_windows(token_counts[start:], budget)[0][1] + start
        windows.append((start, end))
        if end >= len(token_counts):
            break
        start = max(start + 1, (start + end) // 2)
    return windows


def encode_pieces(
    tokenizer: HFTokenizer, sentences: Sequence[Sequence[str]], *, overlap: bool
) -> tuple[list[tuple[int, int, int]], list[Encoded]]:
    """Encoder inputs of word sequences, a sentence too long for the encoder cut into windows.

    Args:
        tokenizer: the encoder's tokenizer (its ``max_length`` is the budget).
        sentences: words of each sentence.
        overlap: windows overlap by half (inference) instead of following each other
            (training).

    Returns:
        ``(pieces, encodings)``: per input, ``(sentence, first word, end word)`` and its
        encoding (word ids relative to the first word); a single word longer than the budget
        keeps its first sub-tokens.
    """
    budget = tokenizer.max_length - tokenizer.num_special
    split = overlapping_windows if overlap else word_windows
    full = tokenizer.encode_words(sentences)
    pieces: list[tuple[int, int, int]] = []
    encodings: list[Encoded | None] = []
    for s, enc in enumerate(full):
        if len(enc.ids) <= tokenizer.max_length:
            pieces.append((s, 0, len(sentences[s])))
            encodings.append(enc)
            continue
        counts = [0] * len(sentences[s])
        for w in enc.word_ids:
            if w is not None:
                counts[w] += 1
        for a, b in split(counts, budget):
            pieces.append((s, a, b))
            encodings.append(None)
    redo = [i for i, e in enumerate(encodings) if e is None]
    again = tokenizer.encode_words(
        [sentences[pieces[i][0]][pieces[i][1] : pieces[i][2]] for i in redo]
    )
    for i, window in zip(redo, again, strict=True):
        encodings[i] = window
    done = []
    for maybe in encodings:
        assert maybe is not None
        done.append(maybe.cut(tokenizer.max_length))  # a single over-long word: its first pieces
    return pieces, done


def encode_tagged(
    tokenizer: HFTokenizer,
    sentences: Sequence[Sequence[str]],
    tag_fields: Mapping[str, Sequence[Sequence[int]]],
) -> list[dict[str, Any]]:
    """Items of word sequences with one or more word-level label fields, cut to ``max_length``.

    Args:
        tokenizer: the encoder's tokenizer.
        sentences: words of each sentence.
        tag_fields: ``{field: per-sentence lists of one class id per word}``.

    Returns:
        items ``{input_ids, <field>: ids aligned to input_ids}``.
    """
    pieces, encodings = encode_pieces(tokenizer, sentences, overlap=False)
    items = []
    for (s, a, _), enc in zip(pieces, encodings, strict=True):
        item: dict[str, Any] = {"input_ids": enc.ids, "case_ids": enc.case_ids}
        for field, tags in tag_fields.items():
            aligned, previous = [], None
            for w in enc.word_ids:
                first = w is not None and w != previous
                aligned.append(tags[s][a + w] if first and w is not None else IGNORE_INDEX)
                previous = w
            item[field] = aligned
        items.append(item)
    return items


def token_classification_dataset(
    text_file: str,
    labels_file: str,
    tokenizer: HFTokenizer,
    labels: Sequence[str],
    skip_bad: bool = False,
    max_words: int | None = None,
) -> ListDataset:
    """Items ``{input_ids, tags}`` of NeMo's ``text.txt`` + ``labels.txt`` (``nlp/token_classification``)."""
    rows = read_token_classification(
        text_file, labels_file, labels=labels, skip_bad=skip_bad, max_words=max_words
    )
    index = _label_index(labels)
    tags = [[index[t] for t in row_tags] for _, row_tags in rows]
    return ListDataset(encode_tagged(tokenizer, [words for words, _ in rows], {"tags": tags}))


def infer_labels(rows: Sequence[Sequence[str]], first: str | None = None) -> list[str]:
    """Sorted distinct labels of ``rows`` (``first`` put first when present)."""
    seen = sorted({label for row in rows for label in row})
    if not seen:
        raise DataError("no labels found in the training data")
    if first is not None and first in seen:
        seen.remove(first)
        seen.insert(0, first)
    return seen


def punctuation_capitalization_dataset(
    text_file: str,
    labels_file: str,
    tokenizer: HFTokenizer,
    punct_labels: Sequence[str],
    capit_labels: Sequence[str],
    skip_bad: bool = False,
    max_words: int | None = None,
) -> ListDataset:
    """Items ``{input_ids, punct, capit}`` of NeMo's punctuation/capitalization files.

    Each label of ``labels_file`` is two characters: the punctuation mark after the word
    (``O`` for none) and its capitalization (``U`` or ``O``)
    (``nlp/punctuation_capitalization``).
    """
    combined = [p + c for p in punct_labels for c in capit_labels]
    rows = read_token_classification(
        text_file, labels_file, labels=combined, skip_bad=skip_bad, max_words=max_words
    )
    punct_index, capit_index = _label_index(punct_labels), _label_index(capit_labels)
    fields = {
        "punct": [[punct_index[t[0]] for t in tags] for _, tags in rows],
        "capit": [[capit_index[t[1]] for t in tags] for _, tags in rows],
    }
    return ListDataset(encode_tagged(tokenizer, [words for words, _ in rows], fields))


def intent_slot_dataset(
    file: str,
    slots_file: str,
    tokenizer: HFTokenizer,
    intent_labels: Sequence[str],
    slot_labels: Sequence[str],
    skip_bad: bool = False,
    max_words: int | None = None,
) -> ListDataset:
    """Items ``{input_ids, intent, slots}`` of NeMo's ``<split>.tsv`` + ``<split>_slots.tsv``
    (``nlp/intent_slot``); ids index the model's ``intent_labels`` and ``slot_labels``."""
    rows = read_intent_slot(
        file,
        slots_file,
        num_intents=len(intent_labels),
        num_slots=len(slot_labels),
        skip_bad=skip_bad,
        max_words=max_words,
    )
    items = encode_tagged(tokenizer, [w for w, _, _ in rows], {"slots": [s for _, _, s in rows]})
    if len(items) != len(rows):  # a sentence over the encoder's length was cut into windows
        raise DataError(f"{file}: a sentence is longer than the encoder's input; set max_words")
    for item, (_, intent, _) in zip(items, rows, strict=True):
        item["intent"] = intent
    return ListDataset(items)
