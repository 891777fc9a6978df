"""The gRPC contract's Python side: generated stubs and helpers shared by host and SDK.

* ``weaviate_plugin_pb2`` / ``weaviate_plugin_pb2_grpc``: generated from
  ``hookspecs/weaviate_plugin.proto`` by ``scripts/gen_grpc.py`` (do not edit).
* :mod:`weaviate_ext.grpc.protocol`: the handshake line, message size limits, the
  packing of vectors and items, the services and methods of each plugin type.
* :mod:`weaviate_ext.grpc.supervisor`: starts, watches, restarts and stops a plugin
  process (host side), started by :mod:`weaviate_ext.grpc.spawn` under the
  :mod:`weaviate_ext.grpc.keeper`, which makes sure nothing it started outlives the host.
* :mod:`weaviate_ext.grpc.remote`: remote mode, the replicas of a running service
  (``Init`` to each, health checks, rotation).
* :mod:`weaviate_ext.grpc.client`: the host-side plugin objects whose hooks call a
  plugin's service.
"""
