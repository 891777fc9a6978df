"""The OpenAPI document at ``/openapi.json`` matches the server: schemathesis generates
requests from it (valid ones, and invalid ones that must be refused with a 4xx) and
checks every answer against it -- no 5xx, only documented status codes, content types
and body shapes, bad data refused, undeclared methods a 405, auth enforced.

(Not checked: that every schema-valid request is accepted. Some rules span fields --
``text`` or ``texts``, ``value`` or ``base64`` -- or depend on the settings and the
plugin -- ``--max-text-length``, ``dimensions`` up to the model's -- and are answered
with a 413 or 422 the document declares.)

The app runs in this process (schemathesis' ASGI transport, which also runs its
lifespan) with real example plugins of all six types, as Python, WebAssembly and native
plugins, and with bearer-token authentication on. The run is derandomized (fixed seed)
and bounded (a few examples per operation), so it finds the same things every time.
"""

from __future__ import annotations

import time
import zlib
from typing import Any, cast

import pytest
import schemathesis
from inprocess import PLUGINS_BY_TYPE, TOKEN, example_app
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)

MAX_EXAMPLES = 25
"""Examples per operation and generation mode in the fuzzing phase."""

SEED = 20261205

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
    unsupported_method,
    ignored_auth,
]

AUTH = {"Authorization": f"Bearer {TOKEN}"}

OPERATION_TYPES = {
    "vectorize": "vectorizer",
    "vectors": "vectorizer",
    "meta": "vectorizer",
    "rerank": "reranker",
    "generate": "generator",
    "transform": "transformer",
    "store": "storage",
    "retrieve": "storage",
    "delete": "storage",
    "authenticate": "auth",
    "authorize": "auth",
}
"""The plugin type an operation under ``{name}`` calls, by the path's last part."""

ALL_PLUGINS = tuple(name for names in PLUGINS_BY_TYPE.values() for name in names)


@pytest.fixture(scope="module")
def served_schema(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The app's OpenAPI document, loaded from the running app, once its plugins are."""
    app = example_app(tmp_path_factory.mktemp("contract"))
    loaded = schemathesis.openapi.from_asgi("/openapi.json", app)
    with asgi.get_client(cast(Any, app)) as client:  # the same lifespan the run uses
        deadline = time.monotonic() + 120
        while client.get("/.well-known/ready").status_code != 204:
            assert time.monotonic() < deadline, "the plugins did not load"
            time.sleep(0.05)
    loaded.config.seed = SEED
    loaded.config.generation.update(
        modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
        max_examples=MAX_EXAMPLES,
        deterministic=True,
        database="none",
    )
    return loaded


schema = schemathesis.pytest.from_fixture("served_schema")


def plugin_for(path: str, generated: str) -> str:
    """A loaded plugin suited to the operation at ``path`` (chosen by the generated
    name, so every plugin of the type is used), or the generated name now and then, so
    unknown names are tried too."""
    last = path.rstrip("/").rsplit("/", 1)[-1]
    names = PLUGINS_BY_TYPE.get(OPERATION_TYPES.get(last, ""), ALL_PLUGINS)
    pick = zlib.crc32(generated.encode("utf-8", "surrogatepass")) % (len(names) + 1)
    return names[pick] if pick < len(names) else generated


@schema.parametrize()
def test_the_server_matches_its_openapi_document(case: Any) -> None:
    if case.path_parameters and "name" in case.path_parameters:
        name = case.path_parameters["name"]
        if isinstance(name, str):
            case.path_parameters["name"] = plugin_for(case.path, name)
    case.call_and_validate(headers=AUTH, checks=CHECKS)


def test_the_run_covers_every_plugin_type(served_schema: Any) -> None:
    """Every operation of the document is run, with plugins of every type behind it."""
    paths = set(served_schema.raw_schema["paths"])
    assert {"/vectors", "/rerank", "/v1/chat/completions", "/api/generate"} <= paths
    assert {
        f"/v1/plugins/{{name}}/{op}" for op in ("vectorize", "transform", "store", "authorize")
    } <= paths
    assert set(OPERATION_TYPES.values()) == set(PLUGINS_BY_TYPE)
