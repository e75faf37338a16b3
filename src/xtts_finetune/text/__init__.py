"""Text handling per language: what the tokenizer can encode, normalisation, sentence splitting."""
