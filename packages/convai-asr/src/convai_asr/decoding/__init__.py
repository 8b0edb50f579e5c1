"""convai_asr.decoding."""
