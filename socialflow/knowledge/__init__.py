"""Knowledge bases: object storage, parsing, chunking, embeddings, vector stores, retrieval.
Filled in by the knowledge work; nothing here yet."""
