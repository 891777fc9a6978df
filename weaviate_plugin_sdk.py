"""``weaviate_plugin_sdk``: the import name of the Python gRPC plugin SDK.

A thin alias of :mod:`weaviate_ext.sdk`, so plugins written as in the product spec
(``from weaviate_plugin_sdk import VectorizerPlugin``) run unchanged.
"""

from weaviate_ext.sdk import *  # noqa: F403
from weaviate_ext.sdk import __all__ as __all__
