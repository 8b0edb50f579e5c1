"""convai_asr.models."""
