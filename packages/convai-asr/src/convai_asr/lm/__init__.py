"""N-gram language models for beam-search decoding: building them (KenLM) and tuning their weights."""
