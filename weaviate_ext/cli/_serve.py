"""``weaviate-ext serve``: the loaded plugins behind HTTP APIs, on uvicorn."""

from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from weaviate_ext.cli._app import _state, cli, grant_options, merge_config
from weaviate_ext.cli._output import JsonFormatter, _OneLineFormatter
from weaviate_ext.grants import Grants

SERVE_LOGGER = "weaviate_ext.serve"

PREFIX = "WEAVIATE_EXT_SERVE_"
"""Prefix of the environment variables that set serve's options (``_HOST``, ``_PORT`` ...),
the names :meth:`weaviate_ext.serve.ServeSettings.from_env` reads too."""


def _tokens(given: tuple[str, ...], token_file: Path | None) -> tuple[str, ...]:
    """Tokens from ``--auth-token``, ``AUTHENTICATION_ALLOWED_TOKENS`` and a token file."""
    from weaviate_ext.serve.settings import TOKENS_ENV

    tokens = [t.strip() for t in given if t.strip()]
    tokens += [t.strip() for t in os.environ.get(TOKENS_ENV, "").split(",") if t.strip()]
    if token_file is not None:
        lines = token_file.read_text(encoding="utf-8").splitlines()
        tokens += [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    return tuple(dict.fromkeys(tokens))


def _log_to_stderr(ctx: click.Context, verbose: bool) -> None:
    """Show the server's own INFO lines (ready, reloads), one line each, secrets scrubbed."""
    state = _state(ctx)
    logger = logging.getLogger(SERVE_LOGGER)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_OneLineFormatter(verbose, state.output))
    previous = (logger.level, logger.propagate)
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False

    def restore() -> None:
        logger.removeHandler(handler)
        logger.setLevel(previous[0])
        logger.propagate = previous[1]

    ctx.call_on_close(restore)


def _json_log_config(secrets: set[str]) -> dict[str, object]:
    """uvicorn's ``log_config`` for ``--log-format json``: uvicorn's and the
    framework's loggers print one JSON object per line on stderr (worker processes
    apply it too)."""
    formatter = f"{JsonFormatter.__module__}.{JsonFormatter.__qualname__}"
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": formatter, "secrets": sorted(secrets)}},
        "handlers": {
            "json": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stderr",
            }
        },
        "loggers": {
            "uvicorn": {"handlers": ["json"], "level": "INFO", "propagate": False},
            "uvicorn.error": {"level": "INFO"},
            "uvicorn.access": {"handlers": ["json"], "level": "INFO", "propagate": False},
            "weaviate_ext": {"handlers": ["json"], "level": "INFO", "propagate": False},
        },
    }


if TYPE_CHECKING:  # (generic in click's type stubs since 8.2; not subscriptable before)
    _StrParam = click.ParamType[str]
else:
    _StrParam = click.ParamType


class _PluginFile(_StrParam):
    """A ``--plugin`` value: a manifest file that exists, or an ``oci://`` reference
    (pulled and verified when the server loads it). From the environment variable, a
    list separated by :data:`os.pathsep` of files (references go on the command line)."""

    name = "plugin"
    envvar_list_splitter = os.pathsep

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        text = str(value)
        if not text.startswith("oci://") and not Path(text).is_file():
            self.fail(f"{text}: no such file", param, ctx)
        return text


@cli.command("serve", context_settings={"show_default": True})
@click.option(
    "--plugins",
    "plugin_dirs",
    multiple=True,
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    metavar="DIR",
    help="Load every plugin.yaml below DIR (repeatable; added to the global --plugins).",
)
@click.option(
    "--plugin",
    "plugin_files",
    multiple=True,
    type=_PluginFile(),
    envvar=PREFIX + "PLUGIN_FILES",
    metavar="FILE|oci://REF",
    help="Load one manifest file, e.g. a plugin-native.yaml, or a plugin artifact from an "
    "OCI registry, oci://HOST/REPO:TAG (verified against the config file's _registry "
    "policy; repeatable).",
)
@click.option(
    "--host",
    default="127.0.0.1",
    envvar=PREFIX + "HOST",
    help="Address to bind (loopback by default; the container image sets 0.0.0.0).",
)
@click.option(
    "--port",
    default=8000,
    envvar=PREFIX + "PORT",
    type=click.IntRange(0, 65535),
    help="TCP port.",
)
@click.option(
    "--uds",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Bind a unix socket instead of TCP.",
)
@click.option(
    "--vectorizer",
    envvar=PREFIX + "VECTORIZER",
    metavar="NAME",
    help="Behind /vectors (default: the only one).",
)
@click.option(
    "--reranker",
    envvar=PREFIX + "RERANKER",
    metavar="NAME",
    help="Behind /rerank (default: the only one).",
)
@click.option(
    "--generator",
    envvar=PREFIX + "GENERATOR",
    metavar="NAME",
    help="Default generator (default: the only one).",
)
@click.option(
    "--auth-token",
    "auth_tokens",
    multiple=True,
    metavar="TOKEN",
    help="Accept 'Authorization: Bearer TOKEN' (repeatable). Also read from "
    "AUTHENTICATION_ALLOWED_TOKENS=a,b; prefer it or --auth-token-file (argv is visible).",
)
@click.option(
    "--auth-token-file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    metavar="FILE",
    help="Accepted bearer tokens, one per line.",
)
@click.option(
    "--auth-plugins",
    is_flag=True,
    envvar=PREFIX + "AUTH_PLUGINS",
    help="Check bearer tokens with the loaded auth plugins too (turns authentication on).",
)
@click.option(
    "--cache/--no-cache",
    default=False,
    envvar="ENABLE_CACHE",
    help="Answer repeated texts of deterministic plugins from memory (also ENABLE_CACHE=1).",
)
@click.option(
    "--cache-size",
    default=10_000,
    envvar=PREFIX + "CACHE_SIZE",
    type=click.IntRange(min=1),
    help="Cache entries.",
)
@click.option(
    "--max-text-length",
    envvar=PREFIX + "MAX_TEXT_LENGTH",
    default=100_000,
    type=click.IntRange(min=1),
    help="Longest text accepted, in characters (413 above).",
)
@click.option(
    "--max-batch",
    envvar=PREFIX + "MAX_BATCH",
    default=2048,
    type=click.IntRange(min=1),
    help="Most texts or documents in one request (413 above).",
)
@click.option(
    "--max-body-bytes",
    envvar=PREFIX + "MAX_BODY_BYTES",
    default=32 * 1024 * 1024,
    type=click.IntRange(min=1),
    help="Largest request body (413 above).",
)
@click.option(
    "--timeout",
    envvar=PREFIX + "TIMEOUT",
    type=click.FloatRange(min=0, min_open=True),
    metavar="S",
    help="Per-call deadline in seconds (default: each plugin's spec.timeout, else 30).",
)
@click.option(
    "--threads",
    envvar=PREFIX + "THREADS",
    default=32,
    type=click.IntRange(min=1),
    help="Plugin calls running at once (each in a worker thread).",
)
@click.option(
    "--batch-window-ms",
    default=0.0,
    envvar="WEAVIATE_EXT_SERVE_BATCH_WINDOW_MS",
    type=click.FloatRange(0, 1000),
    metavar="MS",
    help="Collect concurrent single-text requests to a batch-safe vectorizer "
    "(capabilities.batchSafe) for at most MS milliseconds into one batch call; 0: off.",
)
@click.option(
    "--reload",
    is_flag=True,
    envvar=PREFIX + "RELOAD",
    help="Reload a plugin when its files change.",
)
@click.option(
    "--workers",
    default=1,
    envvar=PREFIX + "WORKERS",
    type=click.IntRange(min=1),
    help="Worker processes (each loads its own plugins).",
)
@click.option(
    "--graceful-timeout",
    default=10.0,
    envvar=PREFIX + "GRACEFUL_TIMEOUT",
    type=click.FloatRange(min=0),
    metavar="S",
    help="On SIGTERM or SIGINT, let requests in flight finish for at most S seconds, then "
    "close the plugins (gRPC plugin processes stop); keep it below the grace period of "
    "the container's orchestrator.",
)
@grant_options
@click.option(
    "--access-log/--no-access-log",
    default=True,
    envvar=PREFIX + "ACCESS_LOG",
    help="Log one line per request.",
)
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    envvar="WEAVIATE_EXT_SERVE_LOG_FORMAT",
    help="Log lines as text, or as one JSON object per line (time, level, logger, "
    "message; request_id, plugin, latency_ms on request lines).",
)
@click.option(
    "--otel/--no-otel",
    default=False,
    envvar="WEAVIATE_EXT_SERVE_OTEL",
    help="Trace requests and plugin calls with OpenTelemetry (the otel extra); "
    "exporters from OTEL_TRACES_EXPORTER (docs/serve.md#observability).",
)
@click.pass_context
def serve_command(
    ctx: click.Context,
    plugin_dirs: tuple[Path, ...],
    plugin_files: tuple[str, ...],
    host: str,
    port: int,
    uds: Path | None,
    vectorizer: str | None,
    reranker: str | None,
    generator: str | None,
    auth_tokens: tuple[str, ...],
    auth_token_file: Path | None,
    auth_plugins: bool,
    cache: bool,
    cache_size: int,
    max_text_length: int,
    max_batch: int,
    max_body_bytes: int,
    timeout: float | None,
    threads: int,
    batch_window_ms: float,
    reload: bool,
    workers: int,
    graceful_timeout: float,
    grant_options: Grants,
    trust: tuple[str, ...],
    access_log: bool,
    log_format: str,
    otel: bool,
) -> None:
    """Serve the loaded plugins over HTTP: Weaviate's inference-container and reranker
    APIs, OpenAI- and Ollama-compatible endpoints, and a native API for every plugin.

    \b
    weaviate-ext serve --plugins ./plugins --port 8000
    # Weaviate: TRANSFORMERS_INFERENCE_API=http://HOST:8000
    #           RERANKER_INFERENCE_API=http://HOST:8000

    The API is described at /openapi.json and /docs; metrics are at /metrics.
    """
    try:
        import uvicorn

        from weaviate_ext.serve import ServeSettings, create_app
        from weaviate_ext.serve.settings import SETTINGS_FILE_ENV, host_config_from_env
    except ImportError as exc:  # the serve extra is not installed
        raise click.ClickException(
            f"{exc}; install the serve extra: pip install 'weaviate-ext[serve]'"
        ) from None

    state = _state(ctx)
    env = host_config_from_env()
    # the _registry section of --config-file, else of WEAVIATE_EXT_SERVE_CONFIG_FILE
    if state.registry is not None:
        registry, registry_base = state.registry, str(state.registry_base)
    else:
        registry, registry_base = env.registry, env.registry_base
    config = merge_config(env.config, state.config)  # the command line wins
    tokens = _tokens(auth_tokens, auth_token_file)
    directories = dict.fromkeys(str(d) for d in (*state.plugin_dirs, *plugin_dirs))
    missing = [d for d in directories if not Path(d).is_dir()]
    if missing:
        raise click.ClickException(f"{missing[0]}: not a directory")
    settings = ServeSettings(
        plugin_dirs=tuple(directories),
        plugin_files=tuple(str(f) for f in plugin_files),
        config=config,
        grants=(env.grants | state.grants | grant_options | Grants.of(trust=trust)).to_data(),
        registry=registry,
        registry_base=registry_base,
        discover=state.discover,
        vectorizer=vectorizer,
        reranker=reranker,
        generator=generator,
        tokens=tokens,
        auth_plugins=auth_plugins,
        cache=cache,
        cache_size=cache_size,
        max_text_length=max_text_length,
        max_batch=max_batch,
        max_body_bytes=max_body_bytes,
        timeout=timeout,
        threads=threads,
        batch_window_ms=batch_window_ms,
        reload=reload,
        otel=otel,
        request_log=access_log and log_format == "json",
    )
    for token in tokens:
        state.output.secrets.add(token)
    where = {"uds": str(uds)} if uds is not None else {"host": host, "port": port}
    options: dict[str, object] = {
        "log_level": "info",
        "access_log": access_log,
        "timeout_graceful_shutdown": graceful_timeout,
        **where,
    }
    if log_format == "json":  # the app's request log replaces uvicorn's access lines
        options.update(access_log=False, log_config=_json_log_config(state.output.secrets))
    else:
        _log_to_stderr(ctx, state.verbose)
    if workers == 1:
        uvicorn.run(create_app(settings), **options)  # type: ignore[arg-type]
        return
    private = tempfile.mkdtemp(prefix="weaviate-ext-serve-")
    try:
        settings_file = Path(private) / "settings.json"
        settings.write(settings_file)
        os.environ[SETTINGS_FILE_ENV] = str(settings_file)
        uvicorn.run(
            "weaviate_ext.serve:app_from_env",
            factory=True,
            workers=workers,
            **options,  # type: ignore[arg-type]
        )
    finally:
        os.environ.pop(SETTINGS_FILE_ENV, None)
        shutil.rmtree(private, ignore_errors=True)
