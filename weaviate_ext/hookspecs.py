"""Hook specifications: the reference for plugin authors.

Every plugin, whatever its runtime, is a pluggy plugin registered in one
``pluggy.PluginManager`` under its manifest name, and implements the hooks of its type
with ``@weaviate_ext.hookimpl``. An implementation may accept fewer arguments than its
spec (pluggy passes only the ones it names), so ``deadline`` can be left out.

Two families of hooks live here:

* **Plugin hooks** (``vectorize_text`` ... ``authorize``, plus ``plugin_setup``,
  ``plugin_health`` and ``plugin_close``) are called on *one* plugin at a time, by the
  typed handle that :meth:`~weaviate_ext.PluginManager.get_vectorizer` and friends
  return. ``authenticate`` and ``authorize`` are also called over *all* auth plugins by
  :meth:`~weaviate_ext.PluginManager.authenticate` / ``authorize``.
* **Framework hooks** (``weaviate_ext_*``) are implemented by bridges (one per runtime),
  by pip packages that ship plugins, and by observers of the plugin lifecycle.

Values that cross these hooks: text is ``str``; vectors are float32 (a numpy array, a
sequence of floats, or packed little-endian float32 ``bytes``); the handle turns them
into numpy ``float32`` arrays and checks ``capabilities.dimensions``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pluggy

from weaviate_ext.plugin_types import TypeTable

if TYPE_CHECKING:
    from weaviate_ext.deadline import Deadline
    from weaviate_ext.manifest import Manifest, PluginConfig
    from weaviate_ext.types import Identity, RankResult

PROJECT_NAME = "weaviate_ext"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)

# ---------------------------------------------------------------------------------------
# Plugin lifecycle (every type)
# ---------------------------------------------------------------------------------------


@hookspec
def plugin_setup(config: PluginConfig, manifest: Manifest) -> None:
    """Prepare the plugin with its resolved configuration, once, before any other call.

    :param config: the values of the manifest's ``spec.config`` schema, after host
        values, ``${env:...}``/``${file:...}`` references and defaults were applied and
        checked. Secret values are :class:`~weaviate_ext.Secret` objects: call
        ``.reveal()`` to read one, and never log it.
    :param manifest: the plugin's parsed manifest (capabilities, resources, directory).

    Raise any exception to refuse loading; its message is shown to the host (with secret
    values scrubbed). Load model files or open connections here, not at import time.
    """


@hookspec
def plugin_health() -> bool:
    """Say whether the plugin is ready to serve.

    Called after setup and before a hot-reloaded version replaces the old one. Return
    ``False`` (or raise) to say it is not healthy; a plugin that does not implement this
    hook counts as healthy.
    """


@hookspec
def plugin_close() -> None:
    """Release what :func:`plugin_setup` acquired.

    Called once, after the last call in flight has finished, when the plugin is unloaded,
    replaced by a reload, or the manager closes. Exceptions are logged and ignored.
    """


# ---------------------------------------------------------------------------------------
# vectorizer
# ---------------------------------------------------------------------------------------


@hookspec
def vectorize_text(text: str, deadline: Deadline) -> Any:
    """Turn one text into one vector.

    :param text: any Unicode text, possibly empty or very long.
    :param deadline: when the caller stops waiting; long work should check
        ``deadline.expired`` or call ``deadline.check()``.
    :return: a vector of ``capabilities.dimensions`` floats: a 1-D numpy array
        (float32 preferred, other float types are converted), a sequence of floats, or
        packed little-endian float32 ``bytes``.

    A vectorizer implements this hook, :func:`vectorize_batch`, or both; the handle
    derives the missing one (a batch of one, or a loop).
    """


@hookspec
def vectorize_batch(texts: Sequence[str], deadline: Deadline) -> Any:
    """Turn several texts into one vector each, in order.

    :param texts: at most ``capabilities.maxBatchSize`` texts (the handle splits larger
        batches into chunks and never sends an empty one).
    :param deadline: see :func:`vectorize_text`.
    :return: ``len(texts)`` vectors: a 2-D numpy array of shape ``(len(texts), dims)``,
        a sequence of vectors, or packed little-endian float32 ``bytes`` of
        ``len(texts) * dims`` floats.
    """


# ---------------------------------------------------------------------------------------
# transformer
# ---------------------------------------------------------------------------------------


@hookspec
def transform(data: Any, deadline: Deadline) -> Any:
    """Transform one item (typically text) into another.

    :param data: the item: ``str`` for text transformers; any JSON-like value otherwise.
    :param deadline: see :func:`vectorize_text`.
    :return: the transformed item. A transformer that splits an item (a chunker)
        returns a ``list``; in a :class:`~weaviate_ext.Pipeline` the next stage then
        receives each element.

    A transformer implements this hook, :func:`transform_batch`, or both.
    """


@hookspec
def transform_batch(items: Sequence[Any], deadline: Deadline) -> Sequence[Any]:
    """Transform several items, in order; returns one result per item."""


# ---------------------------------------------------------------------------------------
# reranker
# ---------------------------------------------------------------------------------------


@hookspec
def rerank(
    query: str, documents: Sequence[str], deadline: Deadline
) -> Iterable[RankResult | tuple[int, float] | float]:
    """Score documents against a query.

    :param query: the search query.
    :param documents: the candidate documents, never empty.
    :param deadline: see :func:`vectorize_text`.
    :return: either one score per document, in input order (a sequence of floats or a
        1-D array), or ``(index, score)`` pairs / :class:`~weaviate_ext.RankResult`
        objects covering every document index exactly once. Higher scores rank higher;
        the handle sorts and checks the indices.
    """


# ---------------------------------------------------------------------------------------
# generator
# ---------------------------------------------------------------------------------------


@hookspec
def generate(prompt: str, options: Mapping[str, Any], deadline: Deadline) -> str:
    """Generate text for a prompt and return it whole.

    :param prompt: the prompt.
    :param options: generation options from the caller (``max_tokens``, ``temperature``,
        ``seed``, ``stop``, ...); a plugin ignores the ones it does not know.
    :param deadline: see :func:`vectorize_text`.

    A generator implements this hook, :func:`generate_stream`, or both; the handle joins
    a stream, or streams a whole answer as one chunk.
    """


@hookspec
def generate_stream(prompt: str, options: Mapping[str, Any], deadline: Deadline) -> Iterator[str]:
    """Generate text for a prompt as it is produced.

    :return: an iterator of text chunks whose concatenation is the answer. The handle
        delivers each chunk to the caller as soon as it is yielded and closes the
        iterator if the caller stops early.
    """


# ---------------------------------------------------------------------------------------
# storage
# ---------------------------------------------------------------------------------------


@hookspec
def store(key: str, data: bytes, deadline: Deadline) -> None:
    """Store ``data`` under ``key``, replacing any previous value.

    Return only once the value is durable to the degree the backend promises: the
    framework treats a return as an acknowledged write.
    """


@hookspec
def retrieve(key: str, deadline: Deadline) -> bytes | None:
    """Return the bytes stored under ``key``, or ``None`` if there is no such key."""


@hookspec
def delete(key: str, deadline: Deadline) -> bool:
    """Remove ``key``; return ``True`` if it existed and ``False`` if it did not."""


# ---------------------------------------------------------------------------------------
# auth
# ---------------------------------------------------------------------------------------


@hookspec(firstresult=True)
def authenticate(credentials: Mapping[str, str], deadline: Deadline) -> Identity | None:
    """Recognise credentials and say whose they are.

    :param credentials: what the client presented, e.g. ``{"api_key": ...}`` or
        ``{"authorization": "Bearer ..."}``.
    :return: an :class:`~weaviate_ext.Identity` when this plugin recognises and accepts
        the credentials, ``None`` when they are not its kind (the next auth plugin is
        asked). Raise to reject credentials that are its kind but wrong.

    Over all auth plugins this is ``firstresult``: the first plugin that returns an
    identity answers.
    """


@hookspec
def authorize(identity: Identity, resource: str, action: str, deadline: Deadline) -> bool | None:
    """Decide whether ``identity`` may perform ``action`` on ``resource``.

    :return: ``True`` to allow, ``False`` to deny, ``None`` to abstain. Over all auth
        plugins a single ``False`` denies, and at least one ``True`` is needed to allow.
    """


# ---------------------------------------------------------------------------------------
# Framework hooks: bridges, discovery, lifecycle observers
# ---------------------------------------------------------------------------------------


@hookspec(firstresult=True)
def weaviate_ext_make_plugin(
    manifest: Manifest, config: PluginConfig, timeout: float | None
) -> object | None:
    """Bridge hook: turn a manifest into a live plugin object, or return ``None``.

    Each runtime's bridge implements this and answers only for manifests whose
    ``spec.runtime`` is its own. It builds the plugin completely (import, compile, start
    a process, ...), and returns an object whose ``@hookimpl`` methods implement the
    hooks of ``manifest.spec.type``; the manager registers that object under the
    manifest's name and calls its ``plugin_setup``. Bridges are found through the
    entry-point group ``weaviate_ext.runtimes`` (the entry point's name is the runtime's
    name) and imported only when a manifest needs them.

    ``timeout`` is the plugin's default deadline in seconds: ``spec.timeout``, else the
    manager's ``default_timeout``; ``None`` means no deadline. Each call's hook receives
    its own :class:`~weaviate_ext.deadline.Deadline` (from the call's ``timeout=``, else
    this one); a bridge that enforces deadlines uses ``timeout`` for what happens outside
    a call (starting and setting up the plugin, replacing a crashed instance) and for a
    hook called without a deadline, and must honour ``None`` as no deadline at all. A
    bridge that does not name the argument does not receive it.

    Raise :class:`~weaviate_ext.PluginLoadError` (or any exception) when the plugin
    cannot be built; the message reaches the host.
    """


@hookspec
def weaviate_ext_discover() -> Iterable[Any]:
    """Discovery hook: hand over the manifests a pip package ships.

    Implemented by the module or object a package registers in the entry-point group
    ``weaviate_ext``. Return paths to ``plugin.yaml`` files (``str``, ``os.PathLike`` or
    ``importlib.resources`` traversables) shipped as package data. The entry point's
    name should be the plugin's ``metadata.name``, so that the manager can find a plugin
    by name without importing every installed package.
    """


@hookspec
def weaviate_ext_plugin_loaded(name: str, manifest: Manifest) -> None:
    """Observer hook: plugin ``name`` was loaded and is serving."""


@hookspec
def weaviate_ext_plugin_unloaded(name: str, manifest: Manifest) -> None:
    """Observer hook: plugin ``name`` was unloaded (its calls in flight may still finish)."""


@hookspec
def weaviate_ext_plugin_reloaded(name: str, old: Manifest, new: Manifest) -> None:
    """Observer hook: plugin ``name`` was replaced by a new version, atomically."""


@hookspec
def weaviate_ext_call_failed(name: str, hook: str, error: BaseException) -> None:
    """Observer hook: a call to plugin ``name``'s ``hook`` raised ``error``.

    ``error`` is the framework exception the caller receives (secrets scrubbed).
    Observers must not raise; an exception here is logged and ignored.
    """


PLUGIN_LIFECYCLE_HOOKS: tuple[str, ...] = ("plugin_setup", "plugin_health", "plugin_close")

TYPE_HOOKS: Mapping[str, tuple[str, ...]] = TypeTable(lambda t: t.hooks)
"""The hooks each plugin type may implement (derived from :mod:`weaviate_ext.plugin_types`)."""

REQUIRED_HOOKS: Mapping[str, tuple[tuple[str, ...], ...]] = TypeTable(lambda t: t.required)
"""For each type, groups of hooks of which a plugin must implement at least one each
(derived from :mod:`weaviate_ext.plugin_types`)."""


# ---------------------------------------------------------------------------------------
# The rest of the bridge contract: isolation and runtime status
# ---------------------------------------------------------------------------------------


@hookspec(firstresult=True)
def weaviate_ext_isolation(manifest: Manifest, plugin: object) -> str | None:
    """Bridge hook: say what isolates ``plugin`` (an object this bridge made for
    ``manifest``) from the host, or return ``None`` for another runtime's manifest.

    Every bridge implements it for its own runtime, next to
    :func:`weaviate_ext_make_plugin`. The text starts with one word, which
    ``weaviate-ext list`` shows: ``none`` (in the host's process: trusted code only;
    ``inspect`` then says the plugin can read whatever the host can), ``sandboxed`` or
    ``process`` (possibly with ``+`` mechanisms, e.g. ``process+landlock(fs,tcp)+netns``),
    then ``:`` or `` (`` and details. The built-in runtimes say: python and native
    ``none: ...``; wasm ``sandboxed (wasmtime: ...)``; grpc ``process...: ...`` with the
    confinement actually applied to that plugin's process. ``None`` from every bridge
    shows as unknown.
    """


@hookspec(firstresult=True)
def plugin_runtime_status() -> tuple[str, str | None]:
    """Say whether the plugin's runtime is serving: ``(state, reason)``.

    ``("serving", None)`` when fine; otherwise a short state and why, e.g.
    ``("restarting", "killed by SIGKILL during the call")`` or ``("failed", "crashed 3
    times in a row")``. ``weaviate-ext list`` and :meth:`~weaviate_ext.PluginManager.plugins`
    show a state other than ``serving`` instead of ``loaded``, with the reason.

    Any plugin object may implement it, whatever its type; a plugin that does not counts
    as serving. The grpc runtime's objects do (a supervised process that crashed is
    ``restarting``, then ``failed``; a remote service whose replicas are unreachable is
    not serving); wasm, native and python plugins have no runtime of their own to be in
    trouble. It must not block: report the last known state, never probe.
    """


RUNTIME_HOOKS: tuple[str, ...] = ("plugin_runtime_status",)
"""Plugin hooks any type may implement besides :data:`PLUGIN_LIFECYCLE_HOOKS` (the
bridge contract's part that lives on the plugin object)."""
