"""Plugin objects over the C ABI: one class per plugin type, with ``@hookimpl`` methods.

The same classes serve the wasm and the native bridge: they encode arguments, call the
exports through a :class:`~weaviate_ext.bridges.cabi.backend.Session`, check statuses
and decode outputs. Only the hooks of the manifest's type are on the object, so the
manager's hook validation sees a plugin of that type.
"""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, ClassVar, NoReturn

import numpy as np

from weaviate_ext.bridges.cabi import abi
from weaviate_ext.bridges.cabi.backend import Arg, Backend, Session
from weaviate_ext.deadline import Deadline
from weaviate_ext.errors import (
    AuthenticationError,
    InvalidInput,
    PluginCallError,
    PluginOutputError,
    ResourceLimitExceeded,
)
from weaviate_ext.hookspecs import hookimpl
from weaviate_ext.manifest import Manifest, PluginConfig
from weaviate_ext.plugin_types import TypeTable, resolve
from weaviate_ext.types import Identity

_DONE = object()


def _json_utf8(value: Any, what: str) -> bytes:
    """``value`` as the UTF-8 JSON text the ABI passes (non-ASCII as UTF-8, not ``\\u``
    escapes, like the config of ``wv_init``, so a plugin with a simple JSON reader sees
    the same bytes the caller gave); :class:`InvalidInput` for text with no UTF-8 form."""
    try:
        return json.dumps(value, default=str, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidInput(f"{what} is not valid Unicode text ({exc.reason})") from None


class CAbiPlugin:
    """Base: lifecycle hooks and status checking."""

    plugin_type: ClassVar[str] = ""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.name = backend.name
        self.weaviate_ext_uses_deadline = backend.uses_deadline
        """``False``: the hooks are passed no deadline (the runtime cannot enforce one;
        :class:`~weaviate_ext.live.LivePlugin` reads this)."""

    @property
    def isolation(self) -> str:
        """How the plugin is isolated from the host (shown to operators)."""
        return self.backend.isolation

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} ({self.backend.isolation})>"

    @hookimpl
    def plugin_setup(self, config: PluginConfig, manifest: Manifest) -> None:
        """Initialise every instance with the config as JSON (``wv_init``)."""
        self.backend.setup(abi.config_json(config))

    @hookimpl
    def plugin_close(self) -> None:
        """Release the instances."""
        self.backend.close()

    def _fail(self, session: Session, hook: str, status: int) -> NoReturn:
        message = session.last_error() or f"failed with status {status}"
        if status == abi.WV_ERR_NOMEM:
            raise ResourceLimitExceeded(self.name, hook, f"out of memory: {message}")
        if status == abi.WV_ERR_INVALID:
            raise InvalidInput(message, plugin=self.name, hook=hook)
        if status == abi.WV_ERR_DENIED:
            raise AuthenticationError(message, plugin=self.name, hook=hook)
        raise PluginCallError(self.name, hook, message)

    def _call(self, session: Session, hook: str, export: str, args: Sequence[Arg]) -> int:
        status = session.call(export, args)
        if status < 0:
            self._fail(session, hook, status)
        return status

    def _expect(self, status: int, allowed: tuple[int, ...], hook: str) -> None:
        """Refuse a success status the hook does not define (e.g. ``wv_authorize``
        returning 5 is neither allow, deny nor abstain)."""
        if status not in allowed:
            expected = ", ".join(str(a) for a in allowed)
            raise PluginOutputError(
                self.name, hook, f"returned status {status}; expected one of {expected}"
            )

    def _text_output(self, session: Session, hook: str) -> str:
        try:
            return bytes(session.output()).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise PluginOutputError(self.name, hook, f"returned invalid UTF-8 ({exc})") from None

    def _json_output(self, session: Session, hook: str) -> Any:
        text = self._text_output(session, hook)
        try:
            return json.loads(text)
        except ValueError as exc:
            raise PluginOutputError(self.name, hook, f"returned invalid JSON ({exc})") from None


class VectorizerPlugin(CAbiPlugin):
    """``wv_vectorize_into`` when exported and the manifest declares its dimensions,
    else ``wv_vectorize_batch``.

    With ``wv_vectorize_into`` (the fast path) both hooks are the backend's own
    functions (:meth:`~.backend.Backend.vectorizer_into`), set on the instance in place
    of the methods below: the texts joined by 0xFF (one join and one encode, nothing per
    text), the vectors written by the plugin into the host's array (native: no copy at
    all; wasm: copied once out of linear memory), their size fixed by the host. Without
    it: the texts packed, one ``wv_vectorize_batch`` call, the output's size checked and
    copied once (the handle checks the dimensions). ``vectorize_text`` calls the same
    export with one text, without making a list or a 1-row matrix. Errors of either
    hook name ``vectorize_batch``, the hook whose export is called."""

    plugin_type = "vectorizer"

    def __init__(self, backend: Backend) -> None:
        super().__init__(backend)
        fast = backend.vectorizer_into(self._fail)
        if fast is not None:
            one, many = fast
            self.vectorize_text = hookimpl(one)  # type: ignore[method-assign,assignment]
            self.vectorize_batch = hookimpl(many)  # type: ignore[method-assign,assignment]

    @hookimpl
    def vectorize_text(self, text: str, deadline: Deadline) -> Any:
        """One text: a 1-D float32 array."""
        return self.backend.vectors(abi.pack_one(text), 1, "vectorize_batch", deadline, self._fail)

    @hookimpl
    def vectorize_batch(self, texts: Sequence[str], deadline: Deadline) -> Any:
        """One call for the whole batch: a ``(len(texts), dims)`` float32 array."""
        count = len(texts)
        packed = abi.pack_strings(texts)
        flat = self.backend.vectors(packed, count, "vectorize_batch", deadline, self._fail)
        return flat.reshape(count, -1)


class TransformerPlugin(CAbiPlugin):
    """``wv_transform`` (and ``wv_transform_batch`` when exported): text to text."""

    plugin_type = "transformer"

    @hookimpl
    def transform(self, data: Any, deadline: Deadline) -> Any:
        """Transform one text."""
        if not isinstance(data, str):
            why = f"data must be str (the plugin transforms text), got {type(data).__name__}"
            raise InvalidInput(why, plugin=self.name, hook="transform")
        with self.backend.session("transform", deadline) as session:
            self._call(session, "transform", "wv_transform", (abi.utf8(data, "data"),))
            return self._text_output(session, "transform")

    @hookimpl
    def transform_batch(self, items: Sequence[Any], deadline: Deadline) -> Sequence[Any]:
        """Transform several texts in one call (a loop without ``wv_transform_batch``)."""
        for i, item in enumerate(items):
            if not isinstance(item, str):
                kind = type(item).__name__
                raise InvalidInput(
                    f"items[{i}] must be str (the plugin transforms text), got {kind}",
                    plugin=self.name,
                    hook="transform_batch",
                )
        if "wv_transform_batch" not in self.backend.exports:
            return [self.transform(item, deadline) for item in items]
        packed = abi.pack_strings(items, "items")
        with self.backend.session("transform_batch", deadline) as session:
            self._call(session, "transform_batch", "wv_transform_batch", (packed, len(items)))
            out = abi.unpack_strings(bytes(session.output()), len(items))
        if out is None:
            raise PluginOutputError(
                self.name, "transform_batch", f"did not return {len(items)} packed UTF-8 strings"
            )
        return out


class RerankerPlugin(CAbiPlugin):
    """``wv_rerank``: a query and packed documents in, one float32 score each out."""

    plugin_type = "reranker"

    @hookimpl
    def rerank(self, query: str, documents: Sequence[str], deadline: Deadline) -> Any:
        """Scores in input order; the handle sorts them."""
        count = len(documents)
        args = (abi.utf8(query, "query"), abi.pack_strings(documents, "documents"), count)
        with self.backend.session("rerank", deadline) as session:
            self._call(session, "rerank", "wv_rerank", args)
            view = session.output()
            if view.nbytes != 4 * count:
                raise PluginOutputError(
                    self.name, "rerank", f"returned {view.nbytes} bytes for {count} scores"
                )
            scores: list[float] = np.frombuffer(view, dtype="<f4").astype(np.float64).tolist()
        return scores


class GeneratorPlugin(CAbiPlugin):
    """``wv_generate`` and ``wv_generate_stream`` (chunks through ``wv_emit``)."""

    plugin_type = "generator"

    @staticmethod
    def _options(options: Mapping[str, Any]) -> bytes:
        return _json_utf8(dict(options), "options")

    @hookimpl
    def generate(self, prompt: str, options: Mapping[str, Any], deadline: Deadline) -> str:
        """The whole answer in one call."""
        args = (abi.utf8(prompt, "prompt"), self._options(options))
        with self.backend.session("generate", deadline) as session:
            self._call(session, "generate", "wv_generate", args)
            return self._text_output(session, "generate")

    @hookimpl
    def generate_stream(
        self, prompt: str, options: Mapping[str, Any], deadline: Deadline
    ) -> Iterator[str]:
        """Chunks as the plugin emits them: the call runs in a worker thread and each
        ``wv_emit`` is handed to the caller at once; closing the iterator makes the next
        ``wv_emit`` return non-zero so the plugin stops."""
        args = (abi.utf8(prompt, "prompt"), self._options(options))
        chunks: queue.SimpleQueue[Any] = queue.SimpleQueue()
        stop = threading.Event()

        def emit(chunk: bytes) -> int:
            if stop.is_set():
                return 1
            chunks.put(chunk)
            return 0

        def run() -> None:
            try:
                with self.backend.session("generate_stream", deadline) as session:
                    session.set_emit(emit)
                    try:
                        self._call(session, "generate_stream", "wv_generate_stream", args)
                    finally:
                        session.set_emit(None)
                chunks.put(_DONE)
            except BaseException as exc:
                chunks.put(exc)

        worker = threading.Thread(target=run, name=f"wv-stream-{self.name}", daemon=True)
        worker.start()
        pending = b""
        try:
            while True:
                item = chunks.get()
                if item is _DONE:
                    break
                if isinstance(item, BaseException):
                    raise item
                pending += item
                try:
                    text = pending.decode("utf-8")
                except UnicodeDecodeError as exc:
                    if exc.reason != "unexpected end of data":
                        raise PluginOutputError(
                            self.name, "generate_stream", f"emitted invalid UTF-8 ({exc})"
                        ) from None
                    continue
                pending = b""
                if text:
                    yield text
            if pending:
                raise PluginOutputError(self.name, "generate_stream", "emitted invalid UTF-8")
        finally:
            stop.set()
            worker.join()


class StoragePlugin(CAbiPlugin):
    """``wv_store`` / ``wv_retrieve`` / ``wv_delete``: keys are UTF-8, values bytes."""

    plugin_type = "storage"

    @hookimpl
    def store(self, key: str, data: bytes, deadline: Deadline) -> None:
        """Store ``data`` under ``key``."""
        with self.backend.session("store", deadline) as session:
            self._call(session, "store", "wv_store", (abi.utf8(key, "key"), bytes(data)))

    @hookimpl
    def retrieve(self, key: str, deadline: Deadline) -> bytes | None:
        """The bytes under ``key`` or ``None`` (``WV_NOT_FOUND``)."""
        with self.backend.session("retrieve", deadline) as session:
            status = self._call(session, "retrieve", "wv_retrieve", (abi.utf8(key, "key"),))
            if status == abi.WV_NOT_FOUND:
                return None
            self._expect(status, (abi.WV_OK,), "retrieve")
            return bytes(session.output())

    @hookimpl
    def delete(self, key: str, deadline: Deadline) -> bool:
        """``True`` when the key existed."""
        with self.backend.session("delete", deadline) as session:
            status = self._call(session, "delete", "wv_delete", (abi.utf8(key, "key"),))
        self._expect(status, (0, 1), "delete")
        return status == 1


class AuthPlugin(CAbiPlugin):
    """``wv_authenticate`` (identity JSON out) and optionally ``wv_authorize``."""

    plugin_type = "auth"

    @hookimpl
    def authenticate(self, credentials: Mapping[str, str], deadline: Deadline) -> Identity | None:
        """The identity the plugin recognises, ``None`` (``WV_NOT_FOUND``), or
        :class:`AuthenticationError` (``WV_ERR_DENIED``)."""
        creds = _json_utf8(dict(credentials), "credentials")
        with self.backend.session("authenticate", deadline) as session:
            status = self._call(session, "authenticate", "wv_authenticate", (creds,))
            if status == abi.WV_NOT_FOUND:
                return None
            self._expect(status, (abi.WV_OK,), "authenticate")
            found = self._json_output(session, "authenticate")
        if not isinstance(found, dict) or not isinstance(found.get("subject"), str):
            raise PluginOutputError(self.name, "authenticate", "identity JSON has no subject")
        roles = found.get("roles") or []
        claims = found.get("claims") or {}
        if not isinstance(roles, list) or not isinstance(claims, dict):
            raise PluginOutputError(self.name, "authenticate", "identity roles/claims malformed")
        return Identity(found["subject"], tuple(str(r) for r in roles), claims)

    @hookimpl
    def authorize(
        self, identity: Identity, resource: str, action: str, deadline: Deadline
    ) -> bool | None:
        """1 allow, 0 deny, ``WV_ABSTAIN`` (or no ``wv_authorize``) abstain."""
        if "wv_authorize" not in self.backend.exports:
            return None
        who: dict[str, Any] = {
            "subject": identity.subject,
            "roles": list(identity.roles),
            "claims": dict(identity.claims),
        }
        args = (
            _json_utf8(who, "identity"),
            abi.utf8(resource, "resource"),
            abi.utf8(action, "action"),
        )
        with self.backend.session("authorize", deadline) as session:
            status = self._call(session, "authorize", "wv_authorize", args)
        self._expect(status, (0, 1, abi.WV_ABSTAIN), "authorize")
        return None if status == abi.WV_ABSTAIN else status == 1


PLUGIN_CLASSES: Mapping[str, type[CAbiPlugin]] = TypeTable(lambda t: resolve(t.cabi_class))
"""The plugin class for each type (derived from :mod:`weaviate_ext.plugin_types`)."""
