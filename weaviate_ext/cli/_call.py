"""``weaviate-ext call``: one call of a plugin of any type."""

from __future__ import annotations

import base64
import functools
import json
import math
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, NoReturn

import attrs
import click

from weaviate_ext.cli._app import (
    _parse_options,
    _plugin,
    _state,
    cli,
    split_assignment,
)
from weaviate_ext.cli._output import (
    CliError,
    Output,
    format_table,
    render_text,
    shown,
)

if TYPE_CHECKING:  # the handles (and numpy) are imported when a command runs, not for --help
    from weaviate_ext.handles import (
        AuthHandle,
        GeneratorHandle,
        PluginHandle,
        RerankerHandle,
        StorageHandle,
        TransformerHandle,
        VectorizerHandle,
    )
    from weaviate_ext.types import Identity

PREVIEW_VALUES = 8
"""How many values of each vector ``call`` prints without ``--json``."""


# ---------------------------------------------------------------------------------------
# call
# ---------------------------------------------------------------------------------------


@attrs.frozen
class Call:
    """One ``call`` invocation: the plugin's handle and what the command line gave."""

    handle: PluginHandle
    args: tuple[str, ...]
    as_json: bool
    options: Mapping[str, Any]
    timeout: float | None
    authorize: str | None
    out: Output


USAGE = {
    "vectorizer": "TEXT...",
    "transformer": "TEXT",
    "reranker": "QUERY DOC...",
    "generator": "PROMPT [--option KEY=VALUE ...]",
    "storage": "put KEY VALUE | get KEY | delete KEY",
    "auth": "KEY=VALUE... [--authorize RESOURCE:ACTION]",
}


def usage_error(call: Call, detail: str = "") -> NoReturn:
    """Raise a usage error that shows how to call a plugin of this type."""
    kind = call.handle.plugin_type
    prefix = f"{detail}; " if detail else ""
    raise click.UsageError(
        f"{prefix}{call.handle.name!r} is a {kind}: "
        f"weaviate-ext call {call.handle.name} {USAGE[kind]}",
        click.get_current_context(),
    )


def require_args(call: Call, minimum: int, maximum: int | None = None) -> None:
    """Check the number of positional arguments after NAME."""
    count = len(call.args)
    if count < minimum or (maximum is not None and count > maximum):
        usage_error(call, f"got {count} argument(s)")


def call_vectorizer(call: Call, handle: VectorizerHandle) -> None:
    """``call NAME TEXT...``: dims, L2 norm and the first values of each vector."""
    import numpy as np

    require_args(call, 1)
    matrix = handle.vectorize_batch(list(call.args), timeout=call.timeout)
    rows = [
        {
            "text": text,
            "dims": int(vector.shape[0]),
            "norm": float(np.linalg.norm(vector.astype(np.float64))),
            "vector": vector.tolist(),
        }
        for text, vector in zip(call.args, matrix, strict=True)
    ]
    if call.as_json:
        call.out.json(rows)
        return
    for row in rows:
        head = ", ".join(f"{v:.4f}" for v in row["vector"][:PREVIEW_VALUES])
        more = ", ..." if row["dims"] > PREVIEW_VALUES else ""
        call.out.line(f"{row['text']!r}: dims={row['dims']} norm={row['norm']:.4f} [{head}{more}]")


def call_transformer(call: Call, handle: TransformerHandle) -> None:
    """``call NAME TEXT``: the transformed item (JSON unless it is a string)."""
    require_args(call, 1, 1)
    result = handle.transform(call.args[0], timeout=call.timeout)
    if call.as_json:
        call.out.json(shown(result))
    elif isinstance(result, str):
        call.out.line(result)
    else:
        call.out.line(json.dumps(shown(result), ensure_ascii=False, default=str))


def call_reranker(call: Call, handle: RerankerHandle) -> None:
    """``call NAME QUERY DOC...``: rank, index, score and document, best first."""
    require_args(call, 2)
    query, *documents = call.args
    ranked = handle.rerank(query, documents, timeout=call.timeout)
    rows: list[dict[str, Any]] = [
        {"rank": rank, "index": r.index, "score": r.score, "document": documents[r.index]}
        for rank, r in enumerate(ranked, 1)
    ]
    if call.as_json:
        call.out.json(rows)
        return
    table = [[str(r["rank"]), str(r["index"]), _score(r["score"]), r["document"]] for r in rows]
    for line in format_table(["RANK", "INDEX", "SCORE", "DOCUMENT"], table):
        call.out.line(line)


def _score(score: float) -> str:
    return f"{score:.4f}" if math.isfinite(score) else str(score)


def call_generator(call: Call, handle: GeneratorHandle) -> None:
    """``call NAME PROMPT``: the answer streamed to stdout chunk by chunk."""
    require_args(call, 1, 1)
    stream = handle.generate_stream(call.args[0], timeout=call.timeout, **call.options)
    chunks: list[str] = []
    try:
        for chunk in stream:
            if call.as_json:
                chunks.append(chunk)
            else:
                call.out.chunk(chunk)
    finally:
        stream.close()
    if call.as_json:
        call.out.json({"text": "".join(chunks), "chunks": chunks})
    else:
        call.out.line()


def call_storage(call: Call, handle: StorageHandle) -> None:
    """``call NAME put KEY VALUE | get KEY | delete KEY``."""
    if not call.args:
        usage_error(call, "missing the operation")
    operation, *rest = call.args
    actions: dict[str, tuple[int, Callable[[Call, StorageHandle, list[str]], None]]] = {
        "put": (2, _storage_put),
        "get": (1, _storage_get),
        "delete": (1, _storage_delete),
    }
    if operation not in actions:
        usage_error(call, f"unknown operation {operation!r}")
    count, action = actions[operation]
    if len(rest) != count:
        usage_error(call, f"{operation} takes {count} argument(s), got {len(rest)}")
    action(call, handle, rest)


def _storage_put(call: Call, handle: StorageHandle, args: list[str]) -> None:
    key, value = args
    data = value.encode("utf-8")
    handle.store(key, data, timeout=call.timeout)
    if call.as_json:
        call.out.json({"key": key, "stored": len(data)})
    else:
        call.out.line(f"stored {key!r} ({len(data)} bytes)")


def _storage_get(call: Call, handle: StorageHandle, args: list[str]) -> None:
    key = args[0]
    data = handle.retrieve(key, timeout=call.timeout)
    if data is None:
        raise CliError(f"no such key {key!r} in {handle.name!r}")
    if call.as_json:
        try:
            text: str | None = data.decode("utf-8")
        except UnicodeDecodeError:
            text = None
        encoded = base64.b64encode(data).decode("ascii")
        call.out.json({"key": key, "value": text, "base64": encoded, "size": len(data)})
    else:
        call.out.raw(data)


def _storage_delete(call: Call, handle: StorageHandle, args: list[str]) -> None:
    key = args[0]
    existed = handle.delete(key, timeout=call.timeout)
    if call.as_json:
        call.out.json({"key": key, "deleted": existed})
    elif existed:
        call.out.line(f"deleted {key!r}")
    if not existed:
        raise CliError(f"no such key {key!r} in {handle.name!r}")


def call_auth(call: Call, handle: AuthHandle) -> None:
    """``call NAME KEY=VALUE...``: the identity (or "not recognised", exit 1)."""
    require_args(call, 1)
    credentials = dict(split_assignment(arg, "KEY") for arg in call.args)
    resource_action = _resource_action(call) if call.authorize else None
    identity = handle.authenticate(credentials, timeout=call.timeout)
    decision = None
    if identity is not None and resource_action is not None:
        decision = handle.authorize(identity, *resource_action, timeout=call.timeout)
    if call.as_json:
        payload: dict[str, Any] = {"identity": _identity(identity)}
        if resource_action is not None:
            payload["decision"] = _decision(decision) if identity is not None else None
        call.out.json(payload)
    elif identity is None:
        call.out.line("not recognised")
    else:
        _print_identity(call.out, identity)
        if resource_action is not None:
            call.out.line(f"authorize {call.authorize}: {_decision(decision)}")
    if identity is None:
        click.get_current_context().exit(1)


def _resource_action(call: Call) -> tuple[str, str]:
    resource, sep, action = (call.authorize or "").rpartition(":")
    if not sep or not resource or not action:
        raise click.BadParameter(
            f"expected RESOURCE:ACTION, got {call.authorize!r}", param_hint="'--authorize'"
        )
    return resource, action


def _identity(identity: Identity | None) -> dict[str, Any] | None:
    if identity is None:
        return None
    return {
        "subject": identity.subject,
        "roles": list(identity.roles),
        "claims": shown(dict(identity.claims)),
        "plugin": identity.plugin,
    }


def _print_identity(out: Output, identity: Identity) -> None:
    info = _identity(identity)
    assert info is not None
    for line in render_text(info):
        out.line(line)


def _decision(decision: bool | None) -> str:
    return {True: "allow", False: "deny", None: "abstain"}[decision]


@functools.cache
def callers() -> dict[type[PluginHandle], Callable[[Call, Any], None]]:
    """The function that makes a ``call`` for each handle type (imports the handles)."""
    from weaviate_ext.handles import (
        AuthHandle,
        GeneratorHandle,
        RerankerHandle,
        StorageHandle,
        TransformerHandle,
        VectorizerHandle,
    )

    return {
        VectorizerHandle: call_vectorizer,
        TransformerHandle: call_transformer,
        RerankerHandle: call_reranker,
        GeneratorHandle: call_generator,
        StorageHandle: call_storage,
        AuthHandle: call_auth,
    }


@cli.command("call", context_settings={"show_default": True})
@click.argument("name")
@click.argument("args", nargs=-1)
@click.option("--json", "as_json", is_flag=True, help="Print JSON (vectors in full).")
@click.option(
    "--option",
    "-o",
    "options",
    multiple=True,
    metavar="KEY=VALUE",
    callback=_parse_options,
    help="A generator option, e.g. max_tokens=20 (repeatable; VALUE is JSON if it parses).",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    metavar="S",
    help="Per-call deadline in seconds (default: the manifest's or 30).",
)
@click.option(
    "--authorize",
    metavar="RESOURCE:ACTION",
    help="Auth plugins: also ask whether the identity may do ACTION on RESOURCE.",
)
@click.pass_context
def call_command(
    ctx: click.Context,
    name: str,
    args: tuple[str, ...],
    as_json: bool,
    options: dict[str, Any],
    timeout: float | None,
    authorize: str | None,
) -> None:
    """Call plugin NAME; the arguments depend on its type.

    \b
    vectorizer   call NAME TEXT...
    transformer  call NAME TEXT
    reranker     call NAME QUERY DOC...
    generator    call NAME PROMPT [-o max_tokens=20 ...]   (streams to stdout)
    storage      call NAME put KEY VALUE | get KEY | delete KEY
    auth         call NAME KEY=VALUE... [--authorize RESOURCE:ACTION]

    Put '--' before arguments that start with '-'.
    """
    state = _state(ctx)
    manager = state.open_manager(ctx)
    _plugin(state, manager, name)
    handle = manager.get(name)
    call = Call(handle, args, as_json, options, timeout, authorize, state.output)
    from weaviate_ext.handles import AuthHandle, GeneratorHandle

    if options and not isinstance(handle, GeneratorHandle):
        usage_error(call, "--option is only for generators")
    if authorize and not isinstance(handle, AuthHandle):
        usage_error(call, "--authorize is only for auth plugins")
    callers()[type(handle)](call, handle)
