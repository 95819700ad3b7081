"""QA datasets (instruction/output rows): reading, validating, splitting, describing, and BM25 retrieval."""
