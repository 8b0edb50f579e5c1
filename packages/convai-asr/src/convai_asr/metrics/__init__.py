"""convai_asr.metrics."""
