"""Plugin authoring: scaffolds for every type and runtime, builds, packaging.

- :func:`create_plugin` writes a new plugin directory (``weaviate-ext new``): a
  manifest, a small working implementation, ``build.sh``, a README and tests.
- :func:`run_build` runs a plugin's ``build.sh`` (``weaviate-ext dev``/``test``).
- :func:`package_plugin` wraps a plugin directory as a pip-installable package
  (``weaviate-ext package``).
"""

from weaviate_ext.scaffold.create import (
    COMBINATIONS,
    LANGUAGES,
    RUNTIMES,
    Scaffold,
    ScaffoldError,
    check_name,
    create_plugin,
    default_language,
)

__all__ = [
    "COMBINATIONS",
    "LANGUAGES",
    "RUNTIMES",
    "Scaffold",
    "ScaffoldError",
    "check_name",
    "create_plugin",
    "default_language",
]
