"""convai_asr.modules."""
