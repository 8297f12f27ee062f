"""Greedy, beam-search and sampling decoders written in pure TF ops, so they live inside SavedModels."""
