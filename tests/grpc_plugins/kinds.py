"""One small gRPC plugin of each type but vectorizer, in the SDK's Pythonic form.

``--kind transformer|reranker|storage|auth`` chooses which one is served.
"""

from __future__ import annotations

import argparse
import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

from weaviate_ext.sdk import (
    AuthenticationError,
    AuthPlugin,
    Identity,
    RerankerPlugin,
    StoragePlugin,
    TransformerPlugin,
    serve,
)


class Upper(TransformerPlugin):
    def transform(self, data: Any) -> Any:
        return data.upper() if isinstance(data, str) else data


class Overlap(RerankerPlugin):
    def rerank(self, query: str, documents: Sequence[str]) -> list[float]:
        words = set(query.lower().split())
        return [len(words & set(d.lower().split())) / (1 + len(d)) for d in documents]


class Memory(StoragePlugin):
    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}

    def store(self, key: str, data: bytes) -> None:
        self.data[key] = data

    def retrieve(self, key: str) -> bytes | None:
        return self.data.get(key)

    def delete(self, key: str) -> bool:
        return self.data.pop(key, None) is not None


class ApiKey(AuthPlugin):
    def setup(self, config: Mapping[str, Any]) -> None:
        self.digest = hashlib.sha256(str(config.get("apiKey", "")).encode()).hexdigest()

    def authenticate(self, credentials: Mapping[str, str]) -> Identity | None:
        key = credentials.get("api_key")
        if key is None:
            return None
        if hashlib.sha256(key.encode()).hexdigest() != self.digest:
            raise AuthenticationError("unknown API key")
        return Identity("key-user", ("reader",), {"kind": "api_key"})

    def authorize(self, identity: Identity, resource: str, action: str) -> bool | None:
        return action == "read" and "reader" in identity.roles


KINDS = {"transformer": Upper, "reranker": Overlap, "storage": Memory, "auth": ApiKey}

if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--kind", required=True, choices=sorted(KINDS))
    serve(KINDS[parser.parse_known_args()[0].kind]())
