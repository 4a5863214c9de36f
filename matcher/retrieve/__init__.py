"""Retrieval: lexical (BM25), cross-lingual (the multilingual space) and hybrid candidates."""
