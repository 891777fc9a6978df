"""The ``weaviate-ext`` command line: list, inspect, validate and call plugins.

Every command is a thin layer over :class:`~weaviate_ext.PluginManager` and
:func:`~weaviate_ext.load_manifest`. Two rules hold for all of them:

* an error of the framework (:class:`~weaviate_ext.WeaviateExtError`) or of the file
  system (:class:`OSError`) is printed as one line, ``error: ...``, on stderr with exit
  code 1; click's usage errors exit with 2; no traceback is ever shown (``-v`` shows
  one for an unexpected internal error);
* no secret configuration value is printed: secret values are :class:`Secret` objects
  whose str is redacted, and every line written is also scrubbed of the clear text of
  the loaded plugins' secrets (:attr:`PluginConfig.secret_values`).
"""

# each import registers its commands on the group
from weaviate_ext.cli import (
    _call,  # noqa: F401
    _dev,  # noqa: F401
    _inspect,  # noqa: F401
    _list,  # noqa: F401
    _new,  # noqa: F401
    _package,  # noqa: F401
    _registry,  # noqa: F401
    _serve,  # noqa: F401
    _test,  # noqa: F401
    _validate,  # noqa: F401
)
from weaviate_ext.cli._app import cli, main

__all__ = ["cli", "main"]
