"""The Python SDK of gRPC plugins (also importable as ``weaviate_plugin_sdk``).

Subclass the base class of your plugin's type, override its Pythonic methods
(recommended) or its raw gRPC methods, and run the file::

    from weaviate_plugin_sdk import VectorizerPlugin, serve

    class Embedder(VectorizerPlugin):
        def setup(self, config):
            self.model = load_model(config.get("modelPath"))

        def vectorize_text(self, text):
            return self.model.encode(text)          # a float32 array

    if __name__ == "__main__":
        serve(Embedder())

Started by a host (``runtime: grpc``, ``command: python plugin_server.py``) it serves
on the private unix socket the host gives it; run by hand it serves on ``--address``.
A script that defines a plugin class and never calls :func:`serve` is served anyway
when it is run as ``__main__`` (see :mod:`weaviate_ext.sdk.autoserve`).
"""

from __future__ import annotations

from weaviate_ext.errors import AuthenticationError
from weaviate_ext.grpc.weaviate_plugin_pb2 import (
    AuthenticateResponse,
    AuthorizeResponse,
    DeleteResponse,
    GenerateRequest,
    GenerateResponse,
    InfoResponse,
    Item,
    RerankRequest,
    RerankResponse,
    RetrieveResponse,
    StoreResponse,
    TransformBatchResponse,
    TransformRequest,
    TransformResponse,
    VectorizeBatchRequest,
    VectorizeBatchResponse,
    VectorizeRequest,
    VectorizeResponse,
)
from weaviate_ext.sdk.plugins import (
    AuthPlugin,
    GeneratorPlugin,
    PluginBase,
    RerankerPlugin,
    StoragePlugin,
    TransformerPlugin,
    VectorizerPlugin,
)
from weaviate_ext.sdk.server import build_server, serve
from weaviate_ext.types import Identity

__all__ = [
    "AuthPlugin",
    "AuthenticateResponse",
    "AuthenticationError",
    "AuthorizeResponse",
    "DeleteResponse",
    "GenerateRequest",
    "GenerateResponse",
    "GeneratorPlugin",
    "Identity",
    "InfoResponse",
    "Item",
    "PluginBase",
    "RerankRequest",
    "RerankResponse",
    "RerankerPlugin",
    "RetrieveResponse",
    "StoragePlugin",
    "StoreResponse",
    "TransformBatchResponse",
    "TransformRequest",
    "TransformResponse",
    "TransformerPlugin",
    "VectorizeBatchRequest",
    "VectorizeBatchResponse",
    "VectorizeRequest",
    "VectorizeResponse",
    "VectorizerPlugin",
    "build_server",
    "serve",
]
