"""openai-generator against a real llama_cpp.server (SmolLM2-135M) started by the tests."""

from __future__ import annotations

import logging
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from conftest import API_KEY, MODEL, NAME, free_port, model_path
from http_doubles import MisbehavingServer
from llama_cpp import Llama
from weaviate_ext_openai import MANIFEST

from weaviate_ext import (
    ConfigError,
    DeadlineExceeded,
    GeneratorHandle,
    InvalidInput,
    PluginCallError,
    PluginLoadError,
    PluginManager,
)
from weaviate_ext.testing import check_plugin

QUESTION = "What is the capital of France? Answer in one sentence."
SAMPLED: dict[str, Any] = {"temperature": 1.0, "seed": 7, "max_tokens": 12}
"""Options that sample (temperature > 0), so only the seed makes answers repeat."""


@pytest.fixture(scope="session")
def manifest_path() -> Path:
    """The plugin.yaml the installed package ships."""
    return Path(str(MANIFEST))


@pytest.fixture(scope="session")
def tokenizer() -> Llama:
    """The model's tokenizer alone (vocab_only), to count the tokens of an answer."""
    return Llama(model_path=model_path(), vocab_only=True, verbose=False)


@pytest.fixture
def load(plugin_manager: PluginManager, manifest_path: Path) -> Any:
    """``load(**config)``: the plugin loaded into a fresh manager with that config."""

    def load(**config: Any) -> GeneratorHandle:
        return plugin_manager.load(manifest_path, config=config)

    return load


def warm(generator: GeneratorHandle, prompt: str) -> None:
    """A call with ``prompt`` first, so that later calls with it get bit-equal logits.

    llama_cpp.server keeps its KV cache between requests: the first request with a prompt
    evaluates it in one batch, every later one re-evaluates only its last token, which can
    change the logits in the last bits and so a near tie. After one call of two tokens or
    more, every call takes the second path.
    """
    generator.generate(prompt, max_tokens=2)


# -- the contract -----------------------------------------------------------------------


def test_conformance(generator: GeneratorHandle) -> None:
    check_plugin(generator).raise_for_failures()


def test_found_as_installed_package(manager: PluginManager) -> None:
    assert NAME in manager.installed
    assert manager.manifest(NAME).spec.type == "generator"


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


# -- against llama_cpp.server -------------------------------------------------------------


def test_generate_answers(generator: GeneratorHandle) -> None:
    assert "Paris" in generator.generate(QUESTION, temperature=0.0, max_tokens=16)


def test_stream_answers_in_pieces(generator: GeneratorHandle) -> None:
    seen: list[str] = []
    chunks = list(generator.generate_stream(QUESTION, seen.append, temperature=0.0))
    assert len(chunks) > 2
    assert all(chunks)
    assert seen == chunks
    assert "Paris" in "".join(chunks)


def test_seed_gives_the_same_text(generator: GeneratorHandle) -> None:
    warm(generator, QUESTION)
    first = generator.generate(QUESTION, **SAMPLED)
    assert generator.generate(QUESTION, **SAMPLED) == first


def test_stream_equals_generate_for_the_same_seed(generator: GeneratorHandle) -> None:
    warm(generator, QUESTION)
    whole = generator.generate(QUESTION, **SAMPLED)
    streamed = "".join(generator.generate_stream(QUESTION, **SAMPLED))
    assert streamed == whole


def test_seed_is_passed_through(generator: GeneratorHandle) -> None:
    prompt = "Write one word."
    warm(generator, prompt)
    answers = {generator.generate(prompt, temperature=1.5, seed=s, max_tokens=8) for s in range(5)}
    assert len(answers) > 1, answers


def test_max_tokens_is_respected(generator: GeneratorHandle, tokenizer: Llama) -> None:
    prompt = "Tell me a long story about a dragon."
    warm(generator, prompt)
    short = list(generator.generate_stream(prompt, temperature=0.0, max_tokens=4))
    assert 1 <= len(short) <= 4
    longer = generator.generate(prompt, temperature=0.0, max_tokens=10)
    text = "".join(short)
    assert longer.startswith(text) and len(longer) > len(text)
    assert len(tokenizer.tokenize(text.encode(), add_bos=False)) <= 4


def test_config_max_tokens_is_the_default(generator: GeneratorHandle, tokenizer: Llama) -> None:
    answer = generator.generate("Tell me a long story about a dragon.", temperature=0.0)
    assert 1 <= len(tokenizer.tokenize(answer.encode(), add_bos=False)) <= 12 + 1


def test_stop_is_passed_through(generator: GeneratorHandle) -> None:
    warm(generator, QUESTION)
    full = generator.generate(QUESTION, temperature=0.0, max_tokens=16)
    assert " is " in full
    cut = generator.generate(QUESTION, temperature=0.0, max_tokens=16, stop=[" is "])
    assert " is " not in cut and full.startswith(cut)


def test_system_prompt_changes_the_answer(
    load: Any, server_config: dict[str, Any], generator: GeneratorHandle
) -> None:
    french = load(**server_config, system_prompt="Answer only in French, in one short sentence.")
    answer = french.generate(QUESTION, temperature=0.0, max_tokens=12)
    assert answer
    assert answer != generator.generate(QUESTION, temperature=0.0, max_tokens=12)


def test_calls_from_many_threads(generator: GeneratorHandle) -> None:
    warm(generator, QUESTION)
    expected = generator.generate(QUESTION, **SAMPLED)
    with ThreadPoolExecutor(max_workers=4) as pool:
        answers = list(pool.map(lambda _: generator.generate(QUESTION, **SAMPLED), range(4)))
        streams = list(
            pool.map(lambda _: "".join(generator.generate_stream(QUESTION, **SAMPLED)), range(4))
        )
    assert answers == [expected] * 4
    assert streams == [expected] * 4


def test_prompt_longer_than_the_context_is_invalid_input(generator: GeneratorHandle) -> None:
    with pytest.raises(InvalidInput, match=r"HTTP 400.*context length"):
        generator.generate("word " * 1000)
    # llama_cpp.server has already answered 200 when the streamed call fails, and ends
    # the stream without an event: a clear error all the same.
    with pytest.raises(PluginCallError, match="ended without any event"):
        list(generator.generate_stream("word " * 1000))
    assert generator.generate(QUESTION, max_tokens=2)


def test_deadline_while_the_server_generates(generator: GeneratorHandle) -> None:
    with pytest.raises(DeadlineExceeded, match=r"deadline of 0\.05s exceeded"):
        generator.generate("Tell me a long story.", timeout=0.05, max_tokens=64)
    assert generator.generate(QUESTION, max_tokens=2)


# -- authentication and secrets -----------------------------------------------------------


def test_wrong_api_key(
    load: Any, server_config: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "sk-wrong-8d2e4b"
    handle = load(**{**server_config, "api_key": wrong})
    with pytest.raises(PluginCallError, match=r"authentication failed \(HTTP 401") as caught:
        handle.generate(QUESTION)
    assert "check api_key" in str(caught.value)
    with pytest.raises(PluginCallError, match="HTTP 401"):
        list(handle.generate_stream(QUESTION))
    for text in (str(caught.value), repr(caught.value), caplog.text, repr(handle)):
        assert wrong not in text
        assert API_KEY not in text


def test_missing_api_key(load: Any, server_config: dict[str, Any]) -> None:
    config = {k: v for k, v in server_config.items() if k != "api_key"}
    with pytest.raises(PluginCallError, match=r"HTTP 401.*api_key is not set"):
        load(**config).generate(QUESTION)


def test_api_key_is_secret_in_config(manager: PluginManager, generator: GeneratorHandle) -> None:
    assert API_KEY not in repr(manager.config_of(NAME))
    obj = manager.registry.get_plugin(NAME)
    assert API_KEY not in repr(obj)


def test_key_echoed_by_the_server_is_scrubbed(
    load: Any, misbehaving: MisbehavingServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    handle = load(base_url=misbehaving.url("echo-key"), model=MODEL, api_key=API_KEY)
    with pytest.raises(PluginCallError, match="HTTP 500") as caught:
        handle.generate(QUESTION)
    assert "internal error handling Bearer" in str(caught.value)
    assert API_KEY not in str(caught.value)
    assert API_KEY not in caplog.text
    chained = caught.value.__cause__ or caught.value.__context__
    assert chained is None or API_KEY not in str(chained)
    assert misbehaving.requests[-1].headers["Authorization"] == f"Bearer {API_KEY}"


# -- connection failures ------------------------------------------------------------------


def test_connection_refused(load: Any) -> None:
    handle = load(base_url=f"http://127.0.0.1:{free_port()}/v1", model=MODEL, api_key=API_KEY)
    with pytest.raises(PluginCallError, match=r"cannot connect to http://127\.0\.0\.1:\d+/v1"):
        handle.generate(QUESTION)
    with pytest.raises(PluginCallError, match="cannot connect"):
        list(handle.generate_stream(QUESTION))


def test_wrong_path_is_not_found(load: Any, llama_server: str) -> None:
    base = llama_server.removesuffix("/v1")  # forgot /v1
    handle = load(base_url=base, model=MODEL, api_key=API_KEY)
    with pytest.raises(PluginCallError, match=r"HTTP 404.*check base_url"):
        handle.generate(QUESTION)


def test_config_timeout(load: Any, misbehaving: MisbehavingServer) -> None:
    handle = load(base_url=misbehaving.url("slow"), model=MODEL, timeout=0.2)
    with pytest.raises(PluginCallError, match=r"did not answer within 0\.2s \(config timeout\)"):
        handle.generate(QUESTION)


def test_deadline_shorter_than_config_timeout(load: Any, misbehaving: MisbehavingServer) -> None:
    handle = load(base_url=misbehaving.url("slow"), model=MODEL, timeout=30)
    with pytest.raises(DeadlineExceeded):
        list(handle.generate_stream(QUESTION, timeout=0.2))


# -- protocol errors (scripted server) ----------------------------------------------------


def test_a_correct_scripted_stream(load: Any, misbehaving: MisbehavingServer) -> None:
    handle = load(base_url=misbehaving.url("ok"), model=MODEL, max_tokens=5)
    assert list(handle.generate_stream("hi", seed=3, stop="x")) == ["Hello", " wor", "ld"]
    assert handle.generate("hi") == "Hello world"
    sent = misbehaving.requests[-2].body
    assert sent["stream"] is True
    assert sent["model"] == MODEL
    assert sent["messages"] == [{"role": "user", "content": "hi"}]
    assert (sent["max_tokens"], sent["seed"], sent["stop"]) == (5, 3, ["x"])
    assert misbehaving.requests[-1].body["stream"] is False
    assert "Authorization" not in misbehaving.requests[-1].headers


def test_system_prompt_and_temperature_on_the_wire(
    load: Any, misbehaving: MisbehavingServer
) -> None:
    handle = load(
        base_url=misbehaving.url("ok"), model=MODEL, system_prompt="Be brief.", temperature=0.5
    )
    handle.generate("hi")
    sent = misbehaving.requests[-1].body
    assert sent["messages"][0] == {"role": "system", "content": "Be brief."}
    assert sent["temperature"] == 0.5
    handle.generate("hi", temperature=0.0)
    assert misbehaving.requests[-1].body["temperature"] == 0.0


@pytest.mark.parametrize(
    ("mode", "message"),
    [
        ("bad-json", r"malformed event stream: an event's data is not JSON: '\{not json'"),
        ("no-choices", "malformed event stream: an event has no 'choices' list"),
        ("truncated", "malformed event stream: it ended before the answer was finished"),
        ("error-event", "the server reported an error in the stream: model overloaded"),
        ("redirect", "HTTP 307.*not followed"),
        ("rate-limited", "rate limited or out of quota.*exceeded your current quota"),
        ("cut", r"the connection to http://127\.0\.0\.1:\d+/cut/v1 broke"),
        ("drop", "the connection to .* broke: Server disconnected without sending a response"),
    ],
)
def test_broken_streams(load: Any, misbehaving: MisbehavingServer, mode: str, message: str) -> None:
    handle = load(base_url=misbehaving.url(mode), model=MODEL)
    received: list[str] = []
    with pytest.raises(PluginCallError, match=message):
        for chunk in handle.generate_stream(QUESTION):
            received.append(chunk)
    if mode == "truncated":
        assert received == ["Once", " upon"]  # what arrived was delivered first
    if mode == "cut":
        assert received == ["Half"]


def test_a_dropped_connection_is_retried_once(load: Any, misbehaving: MisbehavingServer) -> None:
    handle = load(base_url=misbehaving.url("drop-once"), model=MODEL)
    before = len(misbehaving.requests)
    assert handle.generate("hi") == "Hello world"
    assert "".join(handle.generate_stream("hi")) == "Hello world"
    assert len(misbehaving.requests) - before == 4  # each call: dropped, then answered


@pytest.mark.parametrize(
    ("mode", "message"),
    [
        ("not-json", "is not JSON: '<html>a login page</html>'"),
        ("no-message", r"the answer has no choices\[0\]\.message"),
    ],
)
def test_broken_answers(load: Any, misbehaving: MisbehavingServer, mode: str, message: str) -> None:
    handle = load(base_url=misbehaving.url(mode), model=MODEL)
    with pytest.raises(PluginCallError, match=message):
        handle.generate(QUESTION)


def test_json_answer_to_a_stream_request(load: Any, misbehaving: MisbehavingServer) -> None:
    handle = load(base_url=misbehaving.url("json-for-stream"), model=MODEL)
    assert list(handle.generate_stream(QUESTION)) == ["All at once"]


# -- bad options and config ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"max_tokens": 0}, "max_tokens"),
        ({"max_tokens": 2.5}, "max_tokens"),
        ({"temperature": 3}, "temperature"),
        ({"temperature": "hot"}, "temperature"),
        ({"seed": "7"}, "seed"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
        ({"stop": [""]}, "stop"),
        ({"top_p": -0.1}, "top_p"),
        ({"presence_penalty": 5}, "presence_penalty"),
        ({"frequency_penalty": True}, "frequency_penalty"),
    ],
)
def test_bad_options_are_invalid_input(
    load: Any, misbehaving: MisbehavingServer, options: dict[str, Any], named: str
) -> None:
    handle = load(base_url=misbehaving.url("ok"), model=MODEL)
    before = len(misbehaving.requests)
    with pytest.raises(InvalidInput, match=f"option {named} "):
        handle.generate("hi", **options)
    with pytest.raises(InvalidInput, match=f"option {named} "):
        list(handle.generate_stream("hi", **options))
    assert len(misbehaving.requests) == before  # nothing was sent


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"base_url": "ftp://127.0.0.1/v1"}, "must be an http:// or https:// URL"),
        ({"base_url": "127.0.0.1:8000/v1"}, "must be an http:// or https:// URL"),
        ({"base_url": "http://[::1/v1"}, "not a URL"),
        ({"timeout": 0}, "'timeout' must be more than 0"),
        ({"max_tokens": 0}, "'max_tokens' must be at least 1"),
        ({"temperature": 2.5}, "'temperature' must be from 0 to 2"),
    ],
)
def test_bad_config_refuses_to_load(
    plugin_manager: PluginManager, manifest_path: Path, config: dict[str, Any], message: str
) -> None:
    base = {"base_url": "http://127.0.0.1:1/v1", "model": MODEL, "api_key": API_KEY}
    with pytest.raises(PluginLoadError, match=message) as caught:
        plugin_manager.load(manifest_path, config={**base, **config})
    assert API_KEY not in str(caught.value)


def test_config_schema_errors(plugin_manager: PluginManager, manifest_path: Path) -> None:
    with pytest.raises(ConfigError, match="base_url"):
        plugin_manager.load(manifest_path, config={"base_url": 8000})
    with pytest.raises(ConfigError, match="api_keyy"):
        plugin_manager.load(manifest_path, config={"api_keyy": API_KEY})


def test_loads_without_config(plugin_manager: PluginManager, manifest_path: Path) -> None:
    """The defaults load (nothing is sent): a local server at 127.0.0.1:8000, no model."""
    plugin_manager.load(manifest_path)
    config = plugin_manager.config_of(NAME)
    assert config["base_url"] == "http://127.0.0.1:8000/v1"
    assert "api_key" not in config


def test_without_model_no_model_field_is_sent(
    load: Any, misbehaving: MisbehavingServer, llama_server: str
) -> None:
    load(base_url=misbehaving.url("ok")).generate("hi")
    assert "model" not in misbehaving.requests[-1].body
    # llama_cpp.server serves its one model to a request that names none
    with PluginManager(discover=False) as manager:
        handle = manager.load(
            Path(str(MANIFEST)), config={"base_url": llama_server, "api_key": API_KEY}
        )
        assert "Paris" in handle.generate(QUESTION, temperature=0.0, max_tokens=16)
