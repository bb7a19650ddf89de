"""`dynrag serve`: the reranker behind HTTP, and a client that uses it by URL."""
