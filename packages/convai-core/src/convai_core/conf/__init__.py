"""Hydra configs shipped with convai-core (``pkg://convai_core.conf``)."""
