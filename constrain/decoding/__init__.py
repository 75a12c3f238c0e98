"""Decoding with transformers models (LogitsProcessor, generate, generate_json)."""
