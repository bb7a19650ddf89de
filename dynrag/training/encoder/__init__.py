"""Training of the encoder family: the scorer (sentence-transformers), the head, prefix rewards."""
