"""What the ``wasm`` and ``native`` bridges share: the C ABI of
``hookspecs/weaviate_plugin.h`` (:mod:`.abi`), the backend protocol (:mod:`.backend`)
and the per-type plugin objects (:mod:`.plugins`); and what the native bridge checks
before it maps a library: its ELF header (:mod:`.elfcheck`) and a probe load in a
child process (:mod:`.probe`)."""
