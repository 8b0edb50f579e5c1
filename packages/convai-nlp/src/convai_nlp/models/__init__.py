"""Task models of convai-nlp (registered as ``nlp/<task>``)."""
