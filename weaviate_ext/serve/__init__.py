"""``weaviate-ext serve``: loaded plugins behind the HTTP APIs vector databases call.

A Weaviate server cannot import a Python plugin, but it calls inference services over
HTTP. This package puts every plugin loaded by a :class:`~weaviate_ext.PluginManager`,
whatever its runtime, behind those APIs: Weaviate's inference-container and reranker
APIs, OpenAI- and Ollama-compatible endpoints, and a native API for all six plugin
types, with bearer-token auth, a result cache, Prometheus metrics and hot reload.

:func:`create_app` makes the ASGI app; :func:`app_from_env` is the factory for ASGI
servers (``uvicorn --factory weaviate_ext.serve:app_from_env``). See ``docs/serve.md``.
"""

from weaviate_ext.serve.app import app_from_env, create_app
from weaviate_ext.serve.settings import ServeSettings

__all__ = ["ServeSettings", "app_from_env", "create_app"]
