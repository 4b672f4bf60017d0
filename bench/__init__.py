"""trident: prompt, fine-tune or retrieve? Measured on one suite, under one scorer."""

__version__ = "0.1.0"
