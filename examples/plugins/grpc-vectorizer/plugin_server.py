"""The product spec's gRPC plugin, as written, with a real model behind it.

Run by the host (plugin.yaml: ``command: python plugin_server.py``) or by hand::

    python plugin_server.py --address 127.0.0.1:50051

There is no explicit ``serve()`` call: the SDK serves the plugin class defined in a
script run as ``__main__`` when the script's top level ends (see docs/grpc.md).
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "src"))

import grpc  # noqa: F401  (as in the spec)
from hashing_model import load_model

from weaviate_plugin_sdk import VectorizeResponse, VectorizerPlugin


class CustomVectorizer(VectorizerPlugin):
    def __init__(self):
        self.model = load_model()

    def VectorizeText(self, request, context):
        vector = self.model.encode(request.text)
        return VectorizeResponse(vector=vector.tolist())
