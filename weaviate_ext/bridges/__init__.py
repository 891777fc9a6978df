"""Runtime bridges: one module per runtime, each a pluggy plugin implementing
:func:`~weaviate_ext.hookspecs.weaviate_ext_make_plugin`. They are registered through
the entry-point group ``weaviate_ext.runtimes`` and imported only when needed."""
