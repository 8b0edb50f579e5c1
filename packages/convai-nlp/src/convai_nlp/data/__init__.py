"""Data of convai-nlp: NeMo-format readers, batching, and converters of real corpora."""
