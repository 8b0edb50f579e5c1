"""Model parts of convai-nlp: the pretrained transformer encoder and task heads."""
