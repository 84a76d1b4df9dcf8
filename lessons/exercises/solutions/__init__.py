"""Reference answers to the exercises, checked by ``python -m lessons.check --solutions``.
Try the exercises before reading them."""
