"""Decoding with transformers models (LogitsProcessor, generate, generate_json).

:mod:`.processor` (``GrammarLogitsProcessor``) and :mod:`.generate` (``generate_json``,
``generate``) are imported on first use; importing this package loads neither torch nor
transformers.
"""
