"""Language models: corpus preparation, tokenizers, decoder-only transformers, fine-tuning, generation."""
