"""CTC beam search with an n-gram language model (flashlight-text's decoders, KenLM inside).

The ``asr/beam_kenlm`` decoder searches the best token sequences frame by frame and adds
``alpha * log P_LM(words) + beta * |words|`` to the acoustic log-probability. Three ways:

* **lexicon** (a word LM, ``lexicon: auto`` or a file): only words of the lexicon come out. The
  lexicon is the LM's vocabulary (``<lm>.vocab.txt`` written by ``convai lm build``) spelled with
  the model's own tokenizer, or a file of ``word<TAB>token token ...`` lines; a trie of the
  spellings, smeared with unigram scores, guides the search between word ends.
* **lexicon-free with a token LM** (an LM built with ``--units char`` for a character model or
  ``--units tokens`` for a subword model): any spelling can come out, scored token by token.
* **no LM** (``lm: null``): plain beam search over tokens.

Word timestamps come from the best frame path, as for greedy decoding. The decoder runs on the
CPU; items of a batch are decoded one after another.

Another LM plugs in through the decoder registry: register a class that implements
:class:`convai_core.interfaces.Decoder` (``__call__(log_probs, lengths) -> hypotheses`` with
``token_ids``, ``token_frames`` and ``score``), built with ``blank_id`` and ``tokenizer``.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from convai_asr.lm.build import WORD_SEPARATOR, read_lm_info, tokens_digest
from convai_core.errors import ConfigError, ConvaiError
from convai_core.interfaces import Tokenizer

__all__ = ["BeamHypothesis", "KenLMBeamDecoder", "load_lexicon"]

log = logging.getLogger(__name__)

_BLANK = "<convai_blank>"
_UNK = "<unk>"
_IMPOSSIBLE = -1e4  # log-probability of what an appended frame rules out
_WORD_MARKER = "\u2581"


@dataclass
class BeamHypothesis:
    """One beam-search result.

    Attributes:
        token_ids: emitted tokens, repeats collapsed and blanks dropped.
        token_frames: for each emitted token, the frame where its run of frames starts.
        score: total score (acoustic + ``alpha`` * LM + ``beta`` * words).
        lm_score: the LM log-probability of the words (before ``alpha``).
        acoustic_score: the acoustic part of ``score``.
    """

    token_ids: list[int] = field(default_factory=list)
    token_frames: list[int] = field(default_factory=list)
    score: float = 0.0
    lm_score: float = 0.0
    acoustic_score: float = 0.0


def load_lexicon(path: str | os.PathLike[str]) -> dict[str, list[list[str]]]:
    """Read a lexicon file: ``word<TAB or space>token token ...`` per line (several per word ok).

    Raises:
        ConfigError: a line has no spelling (the message names the file and line).
    """
    lexicon: dict[str, list[list[str]]] = {}
    with open(path, encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            word, _, spelling = line.rstrip("\n").partition("\t")
            if not spelling:
                word, _, spelling = line.strip().partition(" ")
            tokens = spelling.split()
            if not word or not tokens:
                raise ConfigError(
                    f"{path}:{number}: a lexicon line is 'word<TAB>token token ...'; got "
                    f"{line.strip()!r}"
                )
            lexicon.setdefault(word, []).append(tokens)
    return lexicon


def _read_vocabulary(path: Path) -> list[str]:
    words = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            word = line.split("\t", 1)[0].strip()
            if word and word not in ("<s>", "</s>", _UNK):
                words.append(word)
    return words


class KenLMBeamDecoder:
    """The ``asr/beam_kenlm`` decoder (see the module docstring).

    Args:
        blank_id: index of the CTC blank (supplied by the model).
        tokenizer: the model's tokenizer (supplied by the model).
        lm: a KenLM file (ARPA or binary); None for beam search without an LM.
        lexicon: ``auto`` (a word LM's vocabulary spelled by the tokenizer), a lexicon file, or
            None for lexicon-free decoding (needs a token LM, or no LM).
        alpha: LM weight.
        beta: score added per word (see :meth:`set_weights`).
        beam: hypotheses kept per frame.
        beam_size_token: the best tokens of each frame tried (None: all of them).
        beam_threshold: drop hypotheses whose score is this far below the best.
        unk_score: score of a word outside the lexicon (``-inf``: never).
        sil_score: score added per word separator.
        log_add: merge equal hypotheses by log-add instead of max.
        blank_skip: frames whose blank probability is at least this, following such a frame,
            are skipped (a run of near-certain blanks becomes one frame, which still separates
            repeated tokens); None decodes every frame. Token frames stay those of the input.

    Raises:
        ConfigError: the LM file is missing, or its units do not fit the lexicon choice or the
            tokenizer (an LM built by ``convai lm build`` says what it holds).

    Shapes:
        log_probs: (B, T, V) log-probabilities, lengths: (B,) -> B hypotheses.
    """

    def __init__(
        self,
        blank_id: int,
        tokenizer: Tokenizer,
        lm: str | os.PathLike[str] | None = None,
        lexicon: str | os.PathLike[str] | None = "auto",
        alpha: float = 0.5,
        beta: float = 1.0,
        beam: int = 32,
        beam_size_token: int | None = 8,
        beam_threshold: float = 12.0,
        unk_score: float = -math.inf,
        sil_score: float = 0.0,
        log_add: bool = False,
        blank_skip: float | None = 0.99,
    ) -> None:
        from flashlight.lib.text import decoder as fl
        from flashlight.lib.text.dictionary import Dictionary

        if beam < 1:
            raise ConfigError(f"beam must be at least 1; got {beam}")
        if blank_skip is not None and not 0.0 < blank_skip <= 1.0:
            raise ConfigError(f"blank_skip must be in (0, 1] or null; got {blank_skip}")
        self.blank_skip = blank_skip
        self.blank_id = int(blank_id)
        self.tokenizer = tokenizer
        self.lm_path = None if lm is None else str(lm)
        self.alpha, self.beta, self.beam = float(alpha), float(beta), int(beam)
        token_texts = list(tokenizer.tokens)
        if len(token_texts) != self.blank_id:
            raise ConfigError(
                f"the decoder expects the blank right after the {len(token_texts)} tokens; got "
                f"blank_id={blank_id}"
            )
        # flashlight names every token; a character model's space is the word separator "|"
        self._sil_id = token_texts.index(" ") if " " in token_texts else self.blank_id
        names = [WORD_SEPARATOR if t == " " else t for t in token_texts] + [_BLANK]
        self._tokens = Dictionary(names)
        n_tokens = len(names)
        if self.lm_path is not None and not Path(self.lm_path).is_file():
            raise ConfigError(
                f"language model {self.lm_path} does not exist; build one with convai lm build "
                "--text corpus.txt --output lm.bin"
            )
        if isinstance(lexicon, str) and lexicon.lower() in ("none", "null", ""):
            lexicon = None
        info = read_lm_info(self.lm_path) if self.lm_path else None
        units = info.units if info else "word"
        if lexicon == "auto" and (self.lm_path is None or units != "word"):
            lexicon = None  # a token LM (or none) is used lexicon-free
        if lexicon is not None and str(lexicon) != "auto" and not Path(lexicon).is_file():
            raise ConfigError(
                f"decoding.lexicon: {lexicon} does not exist; give a file of 'word<TAB>token "
                "token ...' lines, auto (the LM's words spelled by the model) or none"
            )
        if lexicon is not None and self.lm_path is None:
            raise ConfigError("a lexicon file needs a word LM (lm: path/to/lm.bin)")
        if lexicon is not None and units != "word":
            raise ConfigError(
                f"{self.lm_path} is a {units} LM: decode it lexicon-free (lexicon: none); a "
                "lexicon needs a word LM"
            )
        if (
            units == "tokens"
            and info is not None
            and info.tokens_sha256 is not None
            and info.tokens_sha256 != tokens_digest(tokenizer)
        ):
            raise ConfigError(
                f"{self.lm_path} was built on another tokenizer's pieces than this model's; "
                "build it again with convai lm build --units tokens --model <this model>"
            )
        self.lexicon = lexicon
        self.units = units
        self._fl = fl
        size_token = n_tokens if beam_size_token is None else min(int(beam_size_token), n_tokens)
        self._options: dict[str, Any] = {
            "beam_size": self.beam,
            "beam_size_token": size_token,
            "beam_threshold": float(beam_threshold),
            "sil_score": float(sil_score),
            "log_add": bool(log_add),
            "unk_score": float(unk_score),
        }
        self._trie: Any = None
        if lexicon is None:
            if self.lm_path is not None and units == "word":
                raise ConfigError(
                    f"{self.lm_path} is a word LM: decode with a lexicon (lexicon: auto), or build "
                    "a token LM for lexicon-free decoding (convai lm build --units char for a "
                    "character model, --units tokens --model M.convai for a subword model)"
                )
            if units == "char" and self._sil_id == self.blank_id:
                raise ConfigError(
                    f"{self.lm_path} is a character LM but the model's tokens have no space; "
                    "build a token LM with --units tokens --model M.convai"
                )
            self._lm: Any = fl.ZeroLM() if self.lm_path is None else self._kenlm(self._tokens)
        else:
            spellings = self._spellings(lexicon, names)
            self._words = Dictionary([*spellings, _UNK])
            self._words.set_default_index(self._words.get_index(_UNK))
            self._lm = self._kenlm(self._words)
            self._trie = fl.Trie(n_tokens, self._sil_id)
            start = self._lm.start(False)
            for word, word_spellings in spellings.items():
                index = self._words.get_index(word)
                _, unigram = self._lm.score(start, index)
                for spelling in word_spellings:
                    self._trie.insert(spelling, index, unigram)
            self._trie.smear(fl.SmearingMode.MAX)
        self.set_weights(self.alpha, self.beta)

    def _kenlm(self, dictionary: Any) -> Any:
        from flashlight.lib.text.decoder.kenlm import KenLM

        try:
            return KenLM(self.lm_path, dictionary)
        except RuntimeError as err:
            raise ConfigError(
                f"flashlight could not load the language model {self.lm_path} ({err}); it reads "
                "KenLM ARPA and binary files of order 6 at most (convai lm build --order 2..6)"
            ) from err

    @property
    def beta_applies(self) -> bool:
        """Whether ``beta`` changes anything (see :meth:`set_weights`)."""
        return self._trie is not None or self._sil_id != self.blank_id

    def set_weights(self, alpha: float, beta: float) -> None:
        """Change the LM weight and the word bonus (the LM and the lexicon stay loaded).

        ``beta`` is added per lexicon word (lexicon decoding) or per word separator token
        (lexicon-free decoding of a character model); a subword model decoded lexicon-free has
        no separator token, and there ``beta`` has no effect.
        """
        fl = self._fl
        self.alpha, self.beta = float(alpha), float(beta)
        o = self._options
        if self._trie is None:
            free = fl.LexiconFreeDecoderOptions(
                beam_size=o["beam_size"],
                beam_size_token=o["beam_size_token"],
                beam_threshold=o["beam_threshold"],
                lm_weight=self.alpha,
                sil_score=o["sil_score"] + (self.beta if self.beta_applies else 0.0),
                log_add=o["log_add"],
                criterion_type=fl.CriterionType.CTC,
            )
            self._decoder: Any = fl.LexiconFreeDecoder(
                free, self._lm, self._sil_id, self.blank_id, []
            )
            return
        options = fl.LexiconDecoderOptions(
            beam_size=o["beam_size"],
            beam_size_token=o["beam_size_token"],
            beam_threshold=o["beam_threshold"],
            lm_weight=self.alpha,
            word_score=self.beta,
            unk_score=o["unk_score"],
            sil_score=o["sil_score"],
            log_add=o["log_add"],
            criterion_type=fl.CriterionType.CTC,
        )
        self._decoder = fl.LexiconDecoder(
            options, self._trie, self._lm, self._sil_id, self.blank_id,
            self._words.get_index(_UNK), [], False,
        )  # fmt: skip

    def __repr__(self) -> str:
        return (
            f"KenLMBeamDecoder(lm={self.lm_path!r}, lexicon={self.lexicon!r}, alpha={self.alpha},"
            f" beta={self.beta}, beam={self.beam})"
        )

    def _spellings(
        self, lexicon: str | os.PathLike[str], names: list[str]
    ) -> dict[str, list[list[int]]]:
        """Each lexicon word's spellings as token ids (a character model's end with ``|``)."""
        index = {name: i for i, name in enumerate(names)}
        result: dict[str, list[list[int]]] = {}
        if str(lexicon) == "auto":
            assert self.lm_path is not None
            vocab = Path(f"{self.lm_path}.vocab.txt")
            if not vocab.is_file():
                raise ConfigError(
                    f"lexicon: auto reads the LM's word list {vocab}, which is missing (an LM "
                    "not built by convai lm build); pass a lexicon file (word<TAB>token ...)"
                )
            skipped: list[str] = []
            vocabulary = _read_vocabulary(vocab)
            for word in vocabulary:
                try:
                    ids = self.tokenizer.encode(word)
                except (ConvaiError, KeyError, ValueError):
                    skipped.append(word)
                    continue
                if not ids or self.tokenizer.decode(ids) != word:
                    skipped.append(word)
                    continue
                if self._sil_id != self.blank_id:
                    ids = [*ids, self._sil_id]
                result[word] = [ids]
            if skipped:
                log.warning(
                    "lexicon: %d of the %d words of %s cannot be spelled with the model's tokens "
                    "and are left out (e.g. %s)",
                    len(skipped), len(vocabulary), vocab, ", ".join(skipped[:5]),
                )  # fmt: skip
        else:
            for word, spellings in load_lexicon(lexicon).items():
                for spelling in spellings:
                    unknown = [t for t in spelling if t not in index]
                    if unknown:
                        raise ConfigError(
                            f"{lexicon}: the spelling of {word!r} uses {unknown}, which are not "
                            f"tokens of the model (tokens: {names[:-1][:40]})"
                        )
                    ids = [index[t] for t in spelling]
                    if self._sil_id != self.blank_id and ids[-1] != self._sil_id:
                        ids.append(self._sil_id)
                    result.setdefault(word, []).append(ids)
        if not result:
            raise ConfigError(f"the lexicon ({lexicon}) has no word the model can spell")
        return result

    def __call__(self, log_probs: torch.Tensor, lengths: torch.Tensor) -> list[BeamHypothesis]:
        if log_probs.dim() != 3:
            raise ValueError(f"log_probs must be (B, T, V); got shape {tuple(log_probs.shape)}")
        if log_probs.shape[-1] != self.blank_id + 1:
            raise ValueError(
                f"log_probs have {log_probs.shape[-1]} classes; this decoder was built for "
                f"{self.blank_id + 1} (the tokenizer's tokens and the blank)"
            )
        emissions = log_probs.detach().to("cpu", torch.float32)
        # lexicon spellings of a character model end with the word separator, so the last word
        # of an utterance completes only on a separator frame: append one that is certain
        closing = None
        if self.lexicon is not None and self._sil_id != self.blank_id:
            closing = torch.full((1, emissions.shape[-1]), _IMPOSSIBLE)
            closing[0, self._sil_id] = 0.0
        results = []
        for item in range(emissions.shape[0]):
            length = int(lengths[item])
            if length == 0:
                results.append(BeamHypothesis())
                continue
            frames = emissions[item, :length]  # (T_i, V)
            kept = None
            if self.blank_skip is not None:
                sure = frames[:, self.blank_id] >= math.log(self.blank_skip)  # (T_i,)
                repeat = torch.cat([sure.new_zeros(1), sure[:-1]]) & sure
                if bool(repeat.any()):
                    kept = (~repeat).nonzero().squeeze(1)  # (T'_i,) input frame of each frame
                    frames = frames[kept]
            if closing is not None:
                frames = torch.cat([frames, closing])  # (T_i + 1, V)
            frames = frames.contiguous()
            best = self._decoder.decode(frames.data_ptr(), frames.shape[0], frames.shape[1])[0]
            hypothesis = self._hypothesis(best)
            if closing is not None:  # the appended frame carries no token of the utterance
                real = frames.shape[0] - 1
                keep = [i for i, f in enumerate(hypothesis.token_frames) if f < real]
                hypothesis.token_ids = [hypothesis.token_ids[i] for i in keep]
                hypothesis.token_frames = [hypothesis.token_frames[i] for i in keep]
            if kept is not None:
                index = kept.tolist()
                hypothesis.token_frames = [index[f] for f in hypothesis.token_frames]
            results.append(hypothesis)
        return results

    def _hypothesis(self, result: Any) -> BeamHypothesis:
        path = list(result.tokens)[1:-1]  # flashlight pads the frame path with a separator
        ids: list[int] = []
        frames: list[int] = []
        previous = -1
        separator = self._sil_id if self._sil_id != self.blank_id else None
        for frame, token in enumerate(path):
            if token != previous and token != self.blank_id:
                # a separator repeated across a blank is one word break, not two
                if not (token == separator and ids and ids[-1] == separator):
                    ids.append(int(token))
                    frames.append(frame)
            previous = token
        if self.lexicon is not None:
            # the search may end inside a word (a prefix of a lexicon word): keep the tokens up
            # to the frame where the last lexicon word ended
            word_ends = list(result.words)[1:-1]
            ends = [f for f, w in enumerate(word_ends) if w >= 0]
            last = ends[-1] if ends else -1
            keep = sum(1 for f in frames if f <= last)
            del ids[keep:], frames[keep:]
        # a character model's word separators at the edges carry no text
        while ids and ids[0] == self._sil_id and self._sil_id != self.blank_id:
            ids.pop(0)
            frames.pop(0)
        while ids and ids[-1] == self._sil_id and self._sil_id != self.blank_id:
            ids.pop()
            frames.pop()
        return BeamHypothesis(
            token_ids=ids,
            token_frames=frames,
            score=float(result.score),
            lm_score=float(result.lmScore),
            acoustic_score=float(result.emittingModelScore),
        )


def decoder_node(
    lm: str | None,
    *,
    lexicon: str | None = "auto",
    alpha: float | None = None,
    beta: float | None = None,
    beam: int | None = None,
    extra: Sequence[tuple[str, Any]] = (),
) -> dict[str, Any]:
    """A ``decoding`` config node for ``asr/beam_kenlm`` with only the given settings."""
    node: dict[str, Any] = {"name": "asr/beam_kenlm", "lm": lm, "lexicon": lexicon}
    for key, value in (("alpha", alpha), ("beta", beta), ("beam", beam), *extra):
        if value is not None:
            node[key] = value
    return node
