"""Synthetic speech datasets from offline voices (espeak-ng, flite) and text corpora."""
