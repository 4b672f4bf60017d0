"""Retrieval building blocks for the rag arm: chunking, embedding (cached), FAISS indexes.

Each module has one job; bench/arms/rag.py composes them into an arm.
"""


from ..errors import RetrievalError

__all__ = ["RetrievalError"]
