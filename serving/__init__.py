"""Export to versioned SavedModels, the TF-Serving-compatible model server, its client and the CLI."""
