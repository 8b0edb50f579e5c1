"""convai_asr.conf."""
