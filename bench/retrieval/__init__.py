"""Retrieval building blocks for the rag arm: chunking, embedding (cached), FAISS indexes.

Each module has one job; bench/arms/rag.py composes them into an arm.
"""


class RetrievalError(Exception):
    """Bad retrieval input or settings; the message is one line saying what to change."""
