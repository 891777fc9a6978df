"""The plugin-side contracts and SDKs, as package data (``importlib.resources``).

``hookspecs`` and ``sdk`` here are symbolic links to the top-level ``hookspecs/``
and ``sdk/`` folders of the source tree (the one source of truth, DESIGN.md section 8);
building the sdist or wheel copies the files they point to, so an installed
weaviate-ext carries the C ABI header, the gRPC contract, the manifest schema and the
C and Rust SDKs that ``weaviate-ext new`` vendors into a plugin.
"""
