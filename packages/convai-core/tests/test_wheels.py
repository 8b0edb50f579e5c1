"""Files read from cached wheels are checked against pinned digests and extracted atomically."""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import pytest

from convai_core.errors import ConvaiError
from convai_core.wheels import extract_members, wheel_member


@pytest.fixture
def cached_wheel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A wheel ``acme_data-1.0`` already in ``$CONVAI_CACHE/wheels`` (nothing is downloaded)."""
    monkeypatch.setenv("CONVAI_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "cache" / "wheels"
    folder.mkdir(parents=True)
    wheel = folder / "acme_data-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("acme/data/a.txt", "alpha\n")
        zf.writestr("acme/data/b.txt", "beta\n")
    return wheel


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def test_a_member_is_read_only_with_its_pinned_digest(cached_wheel: Path) -> None:
    assert (
        wheel_member("acme-data==1.0", "acme/data/a.txt", _sha("alpha\n"), use="test") == b"alpha\n"
    )
    with pytest.raises(ConvaiError, match=r"has sha256 .* not the pinned .* delete the wheel"):
        wheel_member("acme-data==1.0", "acme/data/a.txt", _sha("tampered\n"), use="test")
    with pytest.raises(ConvaiError, match=r"has no acme/data/c\.txt"):
        wheel_member("acme-data==1.0", "acme/data/c.txt", _sha(""), use="test")


def test_extraction_is_all_or_nothing(cached_wheel: Path, tmp_path: Path) -> None:
    target = tmp_path / "out" / "data"
    members = {"acme/data/a.txt": _sha("alpha\n"), "acme/data/b.txt": _sha("wrong\n")}
    with pytest.raises(ConvaiError):
        extract_members("acme-data==1.0", members, target, use="test")
    assert not target.exists() and not list((tmp_path / "out").iterdir())  # nothing half-written
    members["acme/data/b.txt"] = _sha("beta\n")
    assert extract_members("acme-data==1.0", members, target, use="test") == target
    assert (target / "a.txt").read_text() == "alpha\n" and (target / ".complete").is_file()
    cached_wheel.unlink()  # done once: a complete folder needs the wheel no more
    assert extract_members("acme-data==1.0", members, target, use="test") == target
