"""Data sources: built-in generators, TFDS loaders and user files."""
