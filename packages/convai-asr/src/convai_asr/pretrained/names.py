"""Names ``from_pretrained`` resolves through convai-asr (no torch, no numpy: read by the plugin)."""

from __future__ import annotations

#: ``from_pretrained`` name -> the Whisper source whose encoder it holds.
PRETRAINED_ENCODERS = {
    "whisper-tiny.en-encoder": "whisper-tiny.en",
    "whisper-base-encoder": "whisper-base",
}
