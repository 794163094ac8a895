"""Task-independent engines: the training loop and the validation loop."""
