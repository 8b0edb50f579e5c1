"""ASR -> NLP composed in the core: `convai transcribe --postprocess punct.convai`.

convai-asr does not import convai-nlp: the transcribe command loads the text model through
:func:`convai_core.postprocess.load_text_processor`, which restores any archive by its registry
key and checks the text-processor capability.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from convai_asr.testing import SENTENCES, synthesize_set, tiny_model


def test_transcripts_go_through_a_punctuation_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from convai_asr.cli import transcribe_main
    from convai_core.errors import ConfigError
    from convai_core.postprocess import load_text_processor
    from convai_nlp.data.sources import prepare
    from convai_nlp.models.punctuation_capitalization import PunctuationCapitalizationModel
    from convai_nlp.testing import fit_quietly, subset, task_config

    files = prepare("punctuation")
    text = subset(files["train_text"], tmp_path / "text.txt", 300)
    labels = subset(files["train_labels"], tmp_path / "labels.txt", 300)
    punct = PunctuationCapitalizationModel(
        task_config(
            "punctuation_capitalization",
            **{
                "train_ds.text_file": str(text),
                "train_ds.labels_file": str(labels),
                "train_ds.batch_size": 16,
                "validation_ds": None,
            },
        )
    )
    fit_quietly(punct, epochs=1)
    punct_path = punct.save_to(tmp_path / "punct.convai")

    # the chain does not depend on what the recognizer says: an untrained one spells letters
    speech = synthesize_set(tmp_path / "speech", SENTENCES[:3], "espeak-ng:en-us")
    asr_path = tiny_model("quartznet").save_to(tmp_path / "asr.convai")
    wavs = [
        str(speech.parent / json.loads(line)["audio_filepath"])
        for line in speech.read_text().splitlines()[:3]
    ]

    assert transcribe_main(["--model", str(asr_path), *wavs, "--postprocess", str(punct_path)]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(rows) == 3
    processor = load_text_processor(punct_path)
    for row in rows:
        assert row["raw_text"] and row["text"] == processor.process_texts([row["raw_text"]])[0]
        assert (
            row["text"].lower().replace(",", "").replace(".", "").replace("?", "").split()
            == row["raw_text"].split()
        )
    # a model that does not rewrite text is refused with a message naming it
    with pytest.raises(ConfigError, match="asr/ctc model, which does not rewrite text"):
        load_text_processor(asr_path)
