"""seqzoo's Keras library: recurrent layers, model families and decoding ops.

Imports nothing from `training` or `serving`.
"""
