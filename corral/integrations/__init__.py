"""Integrations with generation loops (transformers; later vLLM). They use only corral's public API."""
