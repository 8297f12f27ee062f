"""Model families: each holds its models, preprocessor and serving signatures."""
