"""weaviate-ext text transformers: two plugins in one package.

``text-chunker`` (:mod:`weaviate_ext_text_transformers.chunker`)
    splits a text into overlapping chunks of sentences, words or WordPiece tokens;
``unicode-normalizer`` (:mod:`weaviate_ext_text_transformers.normalizer`)
    NFKC, control characters removed, whitespace collapsed, optional lower-casing.

Each subpackage ships its own ``plugin.yaml`` and is its own entry point in the group
``weaviate_ext``, so a host that asks for one plugin imports and loads only that one.
In a pipeline (``manager.pipeline("unicode-normalizer", "text-chunker")``) the chunker's
list of chunks fans out into one item per chunk, ready for a vectorizer's batch.
"""
