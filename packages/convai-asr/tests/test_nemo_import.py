"""``convai import nemo``: NeMo CTC checkpoints imported without running their code, with NeMo's
numbers.

The fixtures in ``data/nemo`` were written once by ``tools/nemo_parity_fixtures.py`` in a NeMo
3.0 side venv (NeMo is not a dependency): tiny QuartzNet, Citrinet (squeeze-excite, BPE) and
Conformer-CTC (char and BPE) models with every parameter and buffer random, saved by NeMo's own
``save_to``, and NeMo's features, log-probabilities and greedy transcripts of two waveforms of
different lengths run as one padded batch.
"""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import yaml

from convai_asr.models.ctc import CTCModel
from convai_asr.pretrained.nemo import NemoImportError, import_nemo, read_nemo

DATA = Path(__file__).parent / "data" / "nemo"
KINDS = ["quartznet", "citrinet_bpe", "conformer_char", "conformer_bpe"]
TOLERANCE = 1e-4  # on log-probabilities (the bound)


def _waveforms() -> list[np.ndarray]:
    stored = np.load(DATA / "waveforms.npz")
    return [stored["first"], stored["second"]]


def _batch() -> tuple[torch.Tensor, torch.Tensor]:
    """The padded batch NeMo ran: 16-bit samples / 32768, zeros after the shorter one."""
    waves = _waveforms()
    batch = torch.zeros(len(waves), max(len(w) for w in waves))
    for row, wave in enumerate(waves):
        batch[row, : len(wave)] = torch.from_numpy(wave.astype(np.float32) / 32768.0)
    return batch, torch.tensor([len(w) for w in waves])


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each fixture imported into a .convai archive (the import's temporary folder, which held
    the SentencePiece model, is gone afterwards: restores read the archive alone)."""
    folder = tmp_path_factory.mktemp("imported")
    archives = {}
    for kind in KINDS:
        archives[kind] = folder / f"{kind}.convai"
        import_nemo(DATA / f"{kind}.nemo", archives[kind])
    return archives


def _log_probs(model: CTCModel) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    batch, lengths = _batch()
    model.eval()
    with torch.inference_mode():
        features, frames = model.preprocessor(batch, lengths)
        log_probs, encoded = model(batch, lengths)
    return features, frames, log_probs, encoded


def _assert_matches_nemo(model: CTCModel, kind: str) -> None:
    ref = np.load(DATA / f"{kind}.npz")
    features, frames, log_probs, encoded = _log_probs(model)
    assert frames.tolist() == ref["feature_lengths"].tolist()
    assert features.shape == ref["features"].shape
    assert np.abs(features.numpy() - ref["features"]).max() < TOLERANCE
    assert encoded.tolist() == ref["encoded_lengths"].tolist()
    for row, valid in enumerate(ref["encoded_lengths"]):
        diff = np.abs(log_probs[row, :valid].numpy() - ref["log_probs"][row, :valid]).max()
        assert diff < TOLERANCE, f"{kind} item {row}: max |diff| {diff:.2e}"


@pytest.mark.parametrize("kind", KINDS)
def test_imported_models_reproduce_nemos_outputs(kind: str, imported, tmp_path: Path) -> None:
    model = CTCModel.restore_from(imported[kind])
    _assert_matches_nemo(model, kind)
    # the user's path: files through transcribe() give NeMo's greedy transcripts exactly
    files = []
    for index, wave in enumerate(_waveforms()):
        files.append(tmp_path / f"{index}.wav")
        sf.write(files[-1], wave, 16000, subtype="PCM_16")
    expected = [str(t) for t in np.load(DATA / f"{kind}.npz")["transcripts"]]
    assert all(expected)  # non-empty: the comparison means something
    assert [r["text"] for r in model.transcribe(files)] == [t.strip() for t in expected]


def test_convai_computes_nemos_mel_filterbank_bit_for_bit() -> None:
    from convai_asr.functional import slaney_mel_filterbank

    for kind, n_mels in (("quartznet", 64), ("citrinet_bpe", 80)):
        saved = read_nemo(DATA / f"{kind}.nemo").state["preprocessor.featurizer.fb"][0]
        ours = slaney_mel_filterbank(n_fft=512, n_mels=n_mels, sample_rate=16000)
        assert torch.equal(saved, ours), kind


def test_the_import_maps_each_architecture_onto_convai_parts(imported) -> None:
    citrinet = CTCModel.restore_from(imported["citrinet_bpe"])
    blocks = citrinet.cfg.encoder.blocks
    assert citrinet.cfg.encoder.name == "asr/jasper_encoder"
    assert all(b.se for b in blocks) and blocks[1].stride_last and blocks[1].residual_stride
    assert citrinet.cfg.tokenizer.name == "asr/sentencepiece"
    assert citrinet.tokenizer.vocab_size == 40
    conformer = CTCModel.restore_from(imported["conformer_char"])
    assert conformer.cfg.encoder.name == "asr/conformer_encoder"
    assert conformer.cfg.encoder.xscaling is True
    assert conformer.cfg.preprocessor.count_last_frame is False  # NeMo 3 counts length // hop
    assert conformer.cfg.imported_from["class"] == "EncDecCTCModel"


def _repack(
    source: Path,
    target: Path,
    *,
    gzip_it: bool = False,
    config: dict | None = None,
    config_text: str | None = None,
    weights: bytes | None = None,
    extra: list[tuple[tarfile.TarInfo, bytes | None]] = (),
) -> Path:
    """A copy of a .nemo with its config or weights replaced, members added, or gzip-compressed."""
    with tarfile.open(source, "r:") as tar:
        members = [(info, tar.extractfile(info).read() if info.isreg() else None) for info in tar]
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:") as out:
        for info, data in [*members, *extra]:
            if data is not None and info.name == "./model_config.yaml" and config is not None:
                data = yaml.safe_dump(config).encode()
            if data is not None and info.name == "./model_config.yaml" and config_text:
                data = config_text.encode()
            if data is not None and info.name == "./model_weights.ckpt" and weights is not None:
                data = weights
            if data is not None:
                info.size = len(data)
            out.addfile(info, io.BytesIO(data) if data is not None else None)
    payload = gzip.compress(raw.getvalue()) if gzip_it else raw.getvalue()
    target.write_bytes(payload)
    return target


def _config(kind: str) -> dict:
    with tarfile.open(DATA / f"{kind}.nemo", "r:") as tar:
        return yaml.safe_load(tar.extractfile("./model_config.yaml").read())


def _legacy(config: dict) -> dict:
    """NeMo < 1.0's form of a config: each module as ``{cls: ..., params: {...}}``."""
    legacy = dict(config)
    for part in ("preprocessor", "encoder", "decoder"):
        node = dict(config[part])
        legacy[part] = {"cls": node.pop("_target_"), "params": node}
    return legacy


@pytest.mark.parametrize("variant", ["gzip", "legacy-config", "gzip+legacy-config"])
def test_gzip_files_and_legacy_configs_import(variant: str, tmp_path: Path) -> None:
    kind = "citrinet_bpe"  # the one with a tokenizer member and squeeze-excite blocks
    legacy = _legacy(_config(kind)) if "legacy" in variant else None
    source = _repack(
        DATA / f"{kind}.nemo", tmp_path / "v.nemo", gzip_it="gzip" in variant, config=legacy
    )
    assert (source.read_bytes()[:2] == b"\x1f\x8b") == ("gzip" in variant)
    if legacy is not None:
        with tarfile.open(source) as tar:
            written = yaml.safe_load(tar.extractfile("./model_config.yaml").read())
        assert set(written["encoder"]) == {"cls", "params"}
        assert read_nemo(source).config["encoder"]["_target_"].endswith("ConvASREncoder")
    model, summary = import_nemo(source)
    assert "EncDecCTCModelBPE" in summary
    _assert_matches_nemo(model, kind)


class _RunsCode:
    """Pickles as a call that writes a file: what a hostile checkpoint would do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        import builtins

        return builtins.exec, (f"open({str(self.marker)!r}, 'w').write('code ran')",)


def test_a_nemo_whose_pickle_would_run_code_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "code-ran.txt"
    buffer = io.BytesIO()
    state = dict(read_nemo(DATA / "quartznet.nemo").state)
    state["evil"] = _RunsCode(marker)
    torch.save(state, buffer)
    hostile = _repack(DATA / "quartznet.nemo", tmp_path / "hostile.nemo", weights=buffer.getvalue())
    with pytest.raises(NemoImportError, match=r"model_weights\.ckpt refused.*never runs code"):
        import_nemo(hostile, tmp_path / "out.convai")
    assert not marker.exists()  # the code never ran
    assert not (tmp_path / "out.convai").exists()
    # the file really is hostile: unpickling it the way NeMo does runs the code
    with tarfile.open(hostile) as tar:
        payload = tar.extractfile("./model_weights.ckpt").read()
    torch.load(io.BytesIO(payload), weights_only=False)
    assert marker.read_text() == "code ran"


def _info(name: str, kind: bytes = tarfile.REGTYPE, size: int = 0) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.size = kind, size
    if kind in (tarfile.SYMTYPE, tarfile.LNKTYPE):
        info.linkname = "/etc/passwd"
    return info


@pytest.mark.parametrize(
    ("member", "message"),
    [
        (_info("../evil.txt", size=4), r"contains a '\.\.' component"),
        (_info("/tmp/evil.txt", size=4), "is an absolute path"),
        (_info("./sub/evil.txt", size=4), "inside a sub-folder"),
        (_info("./link", tarfile.SYMTYPE), "is a symbolic link"),
        (_info("./hard", tarfile.LNKTYPE), "is a hard link"),
        (_info("./device", tarfile.CHRTYPE), "is a device file"),
        (_info("./model_config.yaml", size=4), "appears twice"),
    ],
)
def test_unsafe_members_are_refused(member, message: str, tmp_path: Path) -> None:
    data = b"evil" if member.isreg() else None
    bad = _repack(DATA / "quartznet.nemo", tmp_path / "bad.nemo", extra=[(member, data)])
    with pytest.raises(NemoImportError, match=message):
        read_nemo(bad)


def test_a_member_larger_than_the_file_is_refused_before_reading(tmp_path: Path) -> None:
    huge = tmp_path / "huge.nemo"
    with tarfile.open(huge, "w:") as tar:
        tar.addfile(_info("./model_weights.ckpt", size=10**12))  # a header, no data
    with pytest.raises(NemoImportError, match=r"declares 1,000,000,000,000 bytes"):
        read_nemo(huge)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a: &x [1, 2]\nb: *x\n", "aliases are not accepted"),
        ("a: ${oc.env:HOME}\n", r"key a = '\$\{oc\.env:HOME\}' calls a resolver"),
        ("a: [1, 2\n", "is not readable YAML"),
        ("- just\n- a list\n", "holds no mapping"),
    ],
)
def test_configs_are_data_only(text: str, message: str, tmp_path: Path) -> None:
    bad = _repack(DATA / "quartznet.nemo", tmp_path / "bad.nemo", config_text=text)
    with pytest.raises(NemoImportError, match=message):
        read_nemo(bad)


def test_damaged_files_say_what_is_wrong(tmp_path: Path) -> None:
    whole = (DATA / "quartznet.nemo").read_bytes()
    cut = tmp_path / "cut.nemo"
    cut.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(NemoImportError, match=r"truncated"):
        read_nemo(cut)
    empty = tmp_path / "empty.nemo"
    empty.write_bytes(b"")
    with pytest.raises(NemoImportError, match=r"empty \(0 bytes\)"):
        read_nemo(empty)
    with pytest.raises(NemoImportError, match=r"does not exist"):
        read_nemo(tmp_path / "missing.nemo")
    no_weights = tmp_path / "no_weights.nemo"
    with tarfile.open(no_weights, "w:") as tar:
        config = yaml.safe_dump(_config("quartznet")).encode()
        info = _info("./model_config.yaml", size=len(config))
        tar.addfile(info, io.BytesIO(config))
    with pytest.raises(NemoImportError, match=r"no model_weights\.ckpt inside"):
        read_nemo(no_weights)


def _edited(kind: str, tmp_path: Path, edit) -> Path:
    config = _config(kind)
    edit(config)
    return _repack(DATA / f"{kind}.nemo", tmp_path / "edited.nemo", config=config)


@pytest.mark.parametrize(
    ("kind", "edit", "message"),
    [
        (
            "conformer_char",
            lambda c: c["encoder"].update(
                _target_="nemo.collections.asr.modules.SqueezeformerEncoder"
            ),
            r"model\.encoder is SqueezeformerEncoder; convai imports ConvASREncoder",
        ),
        (
            "quartznet",
            lambda c: c["preprocessor"].update(frame_splicing=3),
            r"model\.preprocessor\.frame_splicing = 3 is not supported",
        ),
        (
            "quartznet",
            lambda c: c["encoder"]["jasper"][1].update(residual_dense=True),
            r"model\.encoder\.jasper\[1\]\.residual_dense = True is not supported",
        ),
        (
            "conformer_char",
            lambda c: c["encoder"].update(subsampling="dw_striding", subsampling_factor=8),
            r"model\.encoder\.subsampling = 'dw_striding' is not supported",
        ),
        (
            "quartznet",
            lambda c: c["encoder"]["jasper"][0].pop("filters"),
            r"building its config failed \(TypeError",
        ),
        (
            "conformer_char",
            lambda c: c["encoder"].update(shiny_new_option=1),
            r"model\.encoder has options convai does not know: shiny_new_option",
        ),
        (
            "quartznet",
            lambda c: c.update(target="nemo.collections.asr.models.rnnt_models.EncDecRNNTModel"),
            r"the model class is EncDecRNNTModel; convai imports CTC models",
        ),
    ],
)
def test_unsupported_architectures_and_options_are_named(
    kind: str, edit, message: str, tmp_path: Path
) -> None:
    with pytest.raises(NemoImportError, match=message):
        import_nemo(_edited(kind, tmp_path, edit), tmp_path / "out.convai")
    assert not (tmp_path / "out.convai").exists()


def test_the_conformers_input_scaling_follows_the_config(tmp_path: Path) -> None:
    """``xscaling: false`` (FastConformer's setting) reaches the encoder: the same weights then
    no longer give NeMo's outputs, which were made with the scaling."""
    edited = _edited("conformer_char", tmp_path, lambda c: c["encoder"].update(xscaling=False))
    model, _ = import_nemo(edited)
    assert model.encoder.xscaling is False
    ref = np.load(DATA / "conformer_char.npz")
    log_probs = _log_probs(model)[2]
    valid = ref["encoded_lengths"][0]
    assert np.abs(log_probs[0, :valid].numpy() - ref["log_probs"][0, :valid]).max() > 0.1


def test_weights_that_do_not_fit_the_config_are_named(tmp_path: Path) -> None:
    state = dict(read_nemo(DATA / "conformer_char.nemo").state)
    del state["encoder.layers.1.self_attn.pos_bias_v"]
    buffer = io.BytesIO()
    torch.save(state, buffer)
    bad = _repack(DATA / "conformer_char.nemo", tmp_path / "bad.nemo", weights=buffer.getvalue())
    with pytest.raises(NemoImportError, match=r"encoder\.layers\.1\.self_attn\.pos_bias_v missing"):
        import_nemo(bad)
    state = dict(read_nemo(DATA / "quartznet.nemo").state)
    state["encoder.encoder.9.mconv.0.conv.weight"] = torch.zeros(1)
    buffer = io.BytesIO()
    torch.save(state, buffer)
    bad = _repack(DATA / "quartznet.nemo", tmp_path / "extra.nemo", weights=buffer.getvalue())
    with pytest.raises(NemoImportError, match=r"cannot place: encoder\.encoder\.9\.mconv"):
        import_nemo(bad)


def test_the_command_line_imports_and_the_model_transcribes(tmp_path: Path, capsys) -> None:
    from convai_asr.pretrained.cli import import_main

    out = tmp_path / "qn.convai"
    assert import_main(["nemo", str(DATA / "quartznet.nemo"), "--output", str(out)]) == 0
    assert "EncDecCTCModel with JasperEncoder" in capsys.readouterr().err
    _assert_matches_nemo(CTCModel.restore_from(out), "quartznet")


def test_an_imported_model_exports_to_a_bundle_the_runtime_reads(imported, tmp_path) -> None:
    """NeMo's frame count (length // hop) reaches the torch-free runtime: in the graph at opset
    18, and as ``count_last_frame: false`` (bundle schema 2) for numpy features at opset 16."""
    from convai_asr_runtime import Bundle

    model = CTCModel.restore_from(imported["quartznet"])
    files = []
    for index, wave in enumerate(_waveforms()):
        files.append(tmp_path / f"{index}.wav")
        sf.write(files[-1], wave, 16000, subtype="PCM_16")
    expected = [r["text"] for r in model.transcribe(files)]
    for opset, schema in ((18, 1), (16, 2)):
        out = tmp_path / f"bundle{opset}"
        report = model.export(out, format="asr-bundle", opset=opset, verify_audio=files)
        assert report.passed
        assert json.loads((out / "bundle.json").read_text())["schema_version"] == schema
        assert [r["text"] for r in Bundle(out).transcribe(files)] == expected
