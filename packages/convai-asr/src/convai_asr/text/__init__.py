"""convai_asr.text."""
