"""No secret configuration value appears in a repr, a log line, an exception or stats."""

from __future__ import annotations

import logging
import pickle

import pytest
from plugin_factory import write_plugin

from weaviate_ext import PluginLoadError, PluginManager, WeaviateExtError

HOST_SECRET = "host-secret-4f9a1c"
ENV_SECRET = "env-secret-77b2e0"
FILE_SECRET = "file-secret-c3d5e1"
DEFAULT_SECRET = "default-secret-0a1b2c"
ALL = (HOST_SECRET, ENV_SECRET, FILE_SECRET, DEFAULT_SECRET)

LEAKY = """
    import logging
    from weaviate_ext import hookimpl

    log = logging.getLogger("leaky-plugin")

    class Plugin:
        @hookimpl
        def plugin_setup(self, config):
            self.config = config
            if config["fail_setup"]:
                raise RuntimeError("cannot log in with " + config["token"].reveal())
            log.info("configured with %s and %r", config["token"], config)

        @hookimpl
        def transform(self, data):
            if data == "leak":
                values = [self.config[k].reveal() for k in ("token", "env", "file", "dflt")]
                raise ValueError("auth failed: " + " ".join(values))
            return data
"""


def _plugin(tmp_path):
    (tmp_path / "token.txt").write_text(FILE_SECRET + "\n")
    return write_plugin(
        tmp_path,
        "leaky",
        "transformer",
        LEAKY,
        config={
            "token": {"type": "string", "secret": True, "required": True},
            "env": {"type": "string", "secret": True, "default": "${env:LEAKY_TOKEN}"},
            "file": {"type": "string", "secret": True, "default": "${file:../token.txt}"},
            "dflt": {"type": "string", "secret": True, "default": DEFAULT_SECRET},
            "fail_setup": {"type": "boolean", "default": False},
        },
    )


def _assert_clean(text: str) -> None:
    for secret in ALL:
        assert secret not in text, f"secret {secret} leaked into: {text[:300]}"


def test_secrets_stay_out_of_reprs_logs_errors_and_stats(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("LEAKY_TOKEN", ENV_SECRET)
    caplog.set_level(logging.DEBUG)
    path = _plugin(tmp_path)
    with PluginManager(discover=False, trust=["leaky"]) as manager:  # its defaults read the host
        handle = manager.load(path, config={"token": HOST_SECRET})
        config = manager.config_of("leaky")
        assert config["token"].reveal() == HOST_SECRET
        assert config["env"].reveal() == ENV_SECRET
        assert config["file"].reveal() == FILE_SECRET

        with pytest.raises(WeaviateExtError) as call_error:
            handle.transform("leak")
        assert "**********" in str(call_error.value)
        assert call_error.value.__cause__ is None, "the raw exception holds the secret"

        texts = [
            repr(manager),
            repr(config),
            str(config),
            repr(dict(config)),
            repr(manager.manifest("leaky")),
            repr(manager.plugins()),
            repr(manager.stats()),
            repr(handle),
            str(call_error.value),
            repr(call_error.value),
            f"{config['token']}",
            f"{config['token']!s:>20}",
        ]
        for text in texts:
            _assert_clean(text)

        with pytest.raises(PluginLoadError) as setup_error:
            manager.reload("leaky", config={"token": HOST_SECRET, "fail_setup": True})
        _assert_clean(str(setup_error.value))
        assert "cannot log in with **********" in str(setup_error.value)

    _assert_clean(caplog.text)
    assert "configured with" in caplog.text, "the plugin's log line was captured"


def test_secrets_cannot_be_pickled_into_clear_text(tmp_path, monkeypatch):
    monkeypatch.setenv("LEAKY_TOKEN", ENV_SECRET)
    with PluginManager(discover=False, trust=["leaky"]) as manager:
        manager.load(_plugin(tmp_path), config={"token": HOST_SECRET})
        with pytest.raises(TypeError):
            pickle.dumps(manager.config_of("leaky")["token"])
