"""convai_asr.augment."""
