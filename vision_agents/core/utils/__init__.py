"""Small shared helpers: video fan-out and frame conversions."""
