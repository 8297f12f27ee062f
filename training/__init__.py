"""Data sources, task glue, strategies and the custom distributed training loop."""
