"""Gemini Live example (run ``main.py``)."""
