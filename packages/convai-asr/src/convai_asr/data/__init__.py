"""convai_asr.data."""
