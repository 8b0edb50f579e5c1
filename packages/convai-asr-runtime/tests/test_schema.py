"""The bundle schema: what the runtime accepts, and errors that name the file and the key."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from convai_asr_runtime import BUNDLE_SCHEMA_VERSION, BundleError
from convai_asr_runtime.schema import BundleSettings, read_metadata, write_metadata

FEATURES = {
    "sample_rate": 100,
    "n_fft": 16,
    "win_length": 12,
    "hop_length": 4,
    "n_mels": 8,
    "preemph": 0.97,
    "log": True,
    "log_zero_guard": 2**-24,
    "normalize": "per_feature",
    "pad_to": 0,
    "mag_power": 2.0,
}


def test_a_valid_metadata_file_is_read(metadata) -> None:
    settings = BundleSettings.from_json(metadata(preprocessor=FEATURES), "b/bundle.json")
    assert settings.schema_version == 1
    assert settings.tokens == ("a", " ") and settings.blank_id == 2
    assert settings.frame_shift_s == 0.01 and settings.sample_rate == 100
    assert settings.features is not None and settings.features.n_fft == 16
    assert settings.features.as_dict()["normalize"] == "per_feature"
    assert (settings.chunk_seconds, settings.overlap_seconds) == (30.0, 4.0)
    assert settings.required_files() == ["model.onnx"]


def test_a_newer_schema_says_to_upgrade(metadata) -> None:
    newer = metadata(schema_version=BUNDLE_SCHEMA_VERSION + 1, tokens=None)  # and changed keys
    expected = (
        f"b/bundle.json: bundle schema {BUNDLE_SCHEMA_VERSION + 1} is newer than this runtime "
        f"supports ({BUNDLE_SCHEMA_VERSION}); upgrade convai-asr-runtime"
    )
    with pytest.raises(BundleError, match=re.escape(expected)):
        BundleSettings.from_json(newer, "b/bundle.json")


def test_bundles_of_the_former_convai_export_target_load_as_schema_1(metadata) -> None:
    legacy = metadata(schema_version=None, bundle_format=1)
    assert BundleSettings.from_json(legacy, "b/bundle.json").schema_version == 1


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"schema_version": None}, "key 'schema_version' is missing"),
        ({"schema_version": "1"}, "key 'schema_version' must be a positive integer, got '1'"),
        ({"tokens": None}, "key 'tokens' is missing"),
        ({"tokens": "ab"}, "key 'tokens' must be a JSON array, got 'ab'"),
        ({"tokens": ["a", 3]}, "key 'tokens' item 1 must be a string, got 3"),
        ({"blank_id": 5}, "key 'blank_id' is 5; it must lie in 0..2"),
        ({"blank_id": True}, "key 'blank_id' must be an integer, got True"),
        ({"sample_rate": 16000.5}, "key 'sample_rate' must be an integer, got 16000.5"),
        ({"frame_shift_s": 0}, "'frame_shift_s' (0.0) must be positive"),
        ({"tokenizer": "wordpiece"}, "key 'tokenizer' is 'wordpiece'; this runtime knows char"),
        ({"includes_preprocessor": "yes"}, "key 'includes_preprocessor' must be true or false"),
        ({"graph": "../model.onnx"}, "key 'graph' must be a file name inside the bundle folder"),
        ({"includes_preprocessor": False}, "key 'preprocessor' is missing"),
        ({"transcribe": {"chunk_seconds": 30}}, "key 'transcribe.overlap_seconds' is missing"),
        (
            {"transcribe": {"chunk_seconds": 4, "overlap_seconds": 4}},
            "'transcribe.overlap_seconds' (4.0) must be at least 0 and below",
        ),
        (
            {"preprocessor": {k: v for k, v in FEATURES.items() if k != "normalize"}},
            "key 'preprocessor.normalize' is missing",
        ),
        ({"preprocessor": {**FEATURES, "hop_length": 0}}, "'preprocessor.hop_length'"),
        ({"preprocessor": {**FEATURES, "normalize": "robust"}}, "'preprocessor.normalize' is"),
        ({"preprocessor": {**FEATURES, "log": 1}}, "key 'preprocessor.log' must be true or false"),
    ],
)
def test_a_malformed_key_is_named(metadata, changes: dict, message: str) -> None:
    with pytest.raises(BundleError, match=re.escape(message)) as caught:
        BundleSettings.from_json(metadata(**changes), "some/where/bundle.json")
    assert str(caught.value).startswith("some/where/bundle.json: ")


def test_not_an_object_is_refused() -> None:
    with pytest.raises(BundleError, match=r"x\.json: the metadata must be a JSON object, not list"):
        BundleSettings.from_json([1, 2], "x.json")


def test_reading_names_the_folder_and_missing_files(make_bundle, tmp_path: Path) -> None:
    with pytest.raises(BundleError, match=r"is not an ASR bundle: it has no bundle\.json"):
        read_metadata(tmp_path)
    folder = make_bundle(includes_preprocessor=False, preprocessor=FEATURES)
    with pytest.raises(BundleError, match=r"bundle\.json names 'filterbank\.npy', which is not in"):
        read_metadata(folder)
    (folder / "bundle.json").write_text("{not json")
    with pytest.raises(BundleError, match=r"bundle\.json: not valid JSON \(Expecting"):
        read_metadata(folder)


def test_write_metadata_validates_and_sets_the_version(make_bundle, metadata) -> None:
    folder = make_bundle()
    meta = metadata(schema_version=None)
    meta["extra_key"] = {"kept": True}
    settings = write_metadata(folder, meta)
    assert settings.schema_version == 1  # the oldest version that describes the bundle
    written = json.loads((folder / "bundle.json").read_text())
    assert written["schema_version"] == 1
    assert written["extra_key"] == {"kept": True}  # other keys are kept
    assert read_metadata(folder) == settings
    before = (folder / "bundle.json").read_text()
    with pytest.raises(BundleError, match="key 'blank_id' is missing"):
        write_metadata(folder, metadata(blank_id=None))
    with pytest.raises(BundleError, match=r"names 'tokenizer\.model', which is not in"):
        write_metadata(folder, metadata(tokenizer_model="tokenizer.model"))
    assert (folder / "bundle.json").read_text() == before  # a refused write changes nothing


def test_features_without_the_last_frame_need_schema_2(make_bundle, metadata) -> None:
    folder = make_bundle(includes_preprocessor=False, preprocessor=FEATURES)
    np.save(folder / "filterbank.npy", np.ones((8, 9)))
    np.save(folder / "window.npy", np.ones(12))
    nemo_like = {**FEATURES, "count_last_frame": False}
    outside = {"includes_preprocessor": False, "schema_version": None}
    settings = write_metadata(folder, metadata(preprocessor=nemo_like, **outside))
    assert settings.schema_version == 2 == BUNDLE_SCHEMA_VERSION
    assert settings.features is not None and settings.features.count_last_frame is False
    assert json.loads((folder / "bundle.json").read_text())["schema_version"] == 2
    counted = write_metadata(folder, metadata(preprocessor=FEATURES, **outside))
    assert counted.schema_version == 1 and counted.features is not None
    assert counted.features.count_last_frame is True  # absent: schema 1's meaning
    # features computed inside the graph: the runtime never reads the key, schema 1 suffices
    inside = write_metadata(folder, metadata(preprocessor=nemo_like, schema_version=None))
    assert inside.schema_version == 1


def test_mel_features_count_the_last_frame_or_not() -> None:
    from convai_asr_runtime.features import mel_features

    rng = np.random.default_rng(0)
    audio = rng.normal(0, 0.1, (1, 640)).astype(np.float32)
    lengths = np.array([640])
    settings = {k: v for k, v in FEATURES.items() if k != "sample_rate"}
    filterbank = np.abs(rng.normal(0, 1, (4, FEATURES["n_fft"] // 2 + 1)))
    window = np.hanning(FEATURES["win_length"])
    both, frames = mel_features(audio, lengths, settings, filterbank, window)
    fewer, fewer_frames = mel_features(
        audio, lengths, {**settings, "count_last_frame": False}, filterbank, window
    )
    hop = FEATURES["hop_length"]
    assert frames[0] == 640 // hop + 1 and fewer_frames[0] == 640 // hop
    assert np.all(fewer[0, :, fewer_frames[0] :] == 0.0)  # the left-out frame is zeroed
    assert not np.allclose(both[0, :, : fewer_frames[0]], fewer[0, :, : fewer_frames[0]])
