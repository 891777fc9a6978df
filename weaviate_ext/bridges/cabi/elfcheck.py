"""Is a native plugin's ``spec.binary`` an ELF shared library this host can map?

The dynamic loader trusts the file it maps: a library cut short by an interrupted copy
is mapped past its end and the first touch of a missing page kills the process with
``SIGBUS``, and a library for another architecture fails with a misleading "No such
file or directory". :func:`check_shared_library` reads the ELF header (with
pyelftools) before anything is mapped and refuses, with a sentence saying why:

* a file that is not ELF at all (and says what it looks like: a wasm module, a script,
  a Mach-O or PE library, a static archive);
* another class (32/64-bit), byte order or machine than the running host
  (``is an ELF shared library for AArch64; this host is x86-64``);
* an ELF file that is not a shared library (``ET_EXEC``, ``ET_REL``, ``ET_CORE``);
* a truncated or damaged file: a program header or section header table, or a
  segment's or section's bytes, reaching past the end of the file; header entries of
  the wrong size; no loadable or dynamic segment.

The host is described by the ELF header of its own executable (``/proc/self/exe``);
where that is not ELF (macOS, Windows), there is nothing to compare with and the check
is skipped (:func:`host_elf` is ``None``).

Errors are :class:`ElfCheckError`, whose text is a predicate about the file ("is not an
ELF file ..."), so that a caller puts the file's name in front of it.
"""

from __future__ import annotations

import functools
import io
import os
import sys
from pathlib import Path
from typing import Any

import attrs
from elftools.common.exceptions import ELFError
from elftools.common.utils import struct_parse
from elftools.elf.descriptions import describe_e_machine
from elftools.elf.elffile import ELFFile

__all__ = ["ElfCheckError", "ElfInfo", "check_file", "check_shared_library", "host_elf"]

MACHINE_NAMES: dict[str, str] = {
    "EM_X86_64": "x86-64",
    "EM_386": "x86 (i386)",
    "EM_AARCH64": "AArch64",
    "EM_ARM": "32-bit ARM",
    "EM_RISCV": "RISC-V",
    "EM_PPC64": "PowerPC64",
    "EM_PPC": "PowerPC",
    "EM_S390": "s390x",
    "EM_MIPS": "MIPS",
    "EM_LOONGARCH": "LoongArch",
    "EM_SPARCV9": "SPARC V9",
    "EM_IA_64": "IA-64",
}
"""Short names of the usual ``e_machine`` values (others: pyelftools' description)."""

FILE_KINDS: dict[str, str] = {
    "ET_DYN": "shared library",
    "ET_EXEC": "executable",
    "ET_REL": "object file",
    "ET_CORE": "core dump",
}
"""What each ``e_type`` is called in messages."""

_HEADER_SIZES: dict[int, tuple[int, int, int]] = {32: (52, 32, 40), 64: (64, 56, 64)}
"""Per ELF class: sizes of the file header, a program header, a section header."""

_PN_XNUM = 0xFFFF
_SHT_NOBITS = "SHT_NOBITS"


class ElfCheckError(ValueError):
    """The file cannot be mapped as a shared library; the text says why, as a predicate
    (``is not an ELF file ...``) to be put after the file's name."""


@attrs.frozen
class ElfInfo:
    """What the ELF header says about a file: enough to compare it with the host."""

    bits: int
    """32 or 64 (``EI_CLASS``)."""
    little_endian: bool
    """``EI_DATA``."""
    machine: str
    """``e_machine`` as pyelftools names it (``EM_X86_64``), or its number as text."""
    kind: str
    """``e_type`` (``ET_DYN``, ``ET_EXEC``, ...)."""

    @property
    def machine_name(self) -> str:
        """A short human name of the machine (``AArch64``)."""
        known = MACHINE_NAMES.get(self.machine)
        if known is not None:
            return known
        described = str(describe_e_machine(self.machine))
        return self.machine if described.startswith("<unknown") else described

    def describe(self, detailed: bool = False) -> str:
        """The machine, with class and byte order when ``detailed``."""
        if not detailed:
            return self.machine_name
        order = "little-endian" if self.little_endian else "big-endian"
        return f"{self.machine_name} ({self.bits}-bit, {order})"


def _looks_like(data: bytes) -> str:
    """What a file that is not ELF seems to be, for the message (or an empty string)."""
    if data.startswith(b"\0asm"):
        return "a WebAssembly module: use runtime: wasm for it"
    if data.startswith(b"#!"):
        return "a script"
    if data[:4] in (b"\xcf\xfa\xed\xfe", b"\xce\xfa\xed\xfe", b"\xca\xfe\xba\xbe"):
        return "a Mach-O file (macOS): build the library on Linux"
    if data.startswith(b"MZ"):
        return "a Windows PE file (.dll): build the library on Linux"
    if data.startswith(b"!<arch>\n"):
        return "a static archive (.a): link it into a shared library with -shared"
    if data.startswith(b"version https://git-lfs"):
        return "a Git LFS pointer, not the file itself: git lfs pull"
    return ""


def _read_header(data: bytes) -> tuple[ELFFile, ElfInfo]:
    if data.startswith(b"\x7fELF") and len(data) < 16:
        raise ElfCheckError(f"is truncated: {len(data)} bytes, shorter than an ELF header")
    if len(data) < 16 or not data.startswith(b"\x7fELF"):
        if not data:
            raise ElfCheckError("is not an ELF file (it is empty)")
        seems = _looks_like(data)
        shown = repr(data[:8])
        what = f"it is {seems}" if seems else f"it starts with {shown}"
        raise ElfCheckError(f"is not an ELF file ({what})")
    if data[4] not in (1, 2) or data[5] not in (1, 2):
        raise ElfCheckError(
            f"is a damaged ELF file (unknown class {data[4]} or byte order {data[5]} in its "
            "identification bytes)"
        )
    bits = 32 if data[4] == 1 else 64
    if len(data) < _HEADER_SIZES[bits][0]:
        raise ElfCheckError(
            f"is truncated: {len(data)} bytes, shorter than the {bits}-bit ELF header "
            f"({_HEADER_SIZES[bits][0]} bytes)"
        )
    try:
        elf = ELFFile(io.BytesIO(data))
    except (ELFError, ValueError, LookupError, OSError) as exc:
        raise ElfCheckError(f"is a damaged ELF file (its header cannot be read: {exc})") from None
    header = elf.header
    info = ElfInfo(
        bits=int(elf.elfclass),
        little_endian=bool(elf.little_endian),
        machine=str(header["e_machine"]),
        kind=str(header["e_type"]),
    )
    return elf, info


def _table_end(offset: int, count: int, entry_size: int) -> int:
    return offset + count * entry_size


def _entry(elf: ELFFile, struct: Any, offset: int) -> Any:
    """One program or section header at ``offset`` (which lies inside the file)."""
    return struct_parse(struct, elf.stream, stream_pos=offset)


def _check_layout(elf: ELFFile, info: ElfInfo, size: int) -> None:
    """Refuse headers, segments and sections that reach past the end of the file."""
    header = elf.header
    _, phent, shent = _HEADER_SIZES[info.bits]
    truncated = f"is truncated or damaged (the file has {size} bytes, but"
    phoff, phnum = int(header["e_phoff"]), int(header["e_phnum"])
    if phnum == 0 or phoff == 0:
        raise ElfCheckError("is a damaged shared library: it has no program headers")
    if phnum == _PN_XNUM:
        raise ElfCheckError("is a damaged shared library: 65535 or more program headers")
    if int(header["e_phentsize"]) != phent:
        raise ElfCheckError(
            f"is a damaged ELF file: program header entries of {header['e_phentsize']} bytes, "
            f"expected {phent}"
        )
    end = _table_end(phoff, phnum, phent)
    if end > size:
        raise ElfCheckError(f"{truncated} its program header table ends at byte {end})")
    types: set[str] = set()
    for index in range(phnum):
        segment = _entry(elf, elf.structs.Elf_Phdr, phoff + index * phent)
        kind = str(segment["p_type"])
        types.add(kind)
        offset, filesz = int(segment["p_offset"]), int(segment["p_filesz"])
        if filesz and offset + filesz > size:
            name = kind.removeprefix("PT_")
            raise ElfCheckError(
                f"{truncated} its {name} segment {index} ends at byte {offset + filesz})"
            )
        if kind == "PT_LOAD" and filesz > int(segment["p_memsz"]):
            raise ElfCheckError(
                f"is a damaged ELF file: LOAD segment {index} holds more bytes in the file "
                "than in memory"
            )
    if "PT_LOAD" not in types:
        raise ElfCheckError("is a damaged shared library: it has no loadable segment")
    if "PT_DYNAMIC" not in types:
        raise ElfCheckError("is not a usable shared library: it has no dynamic section")
    shoff = int(header["e_shoff"])
    if shoff == 0:
        return  # no section headers: legal (stripped hard), nothing more to check
    if int(header["e_shentsize"]) != shent:
        raise ElfCheckError(
            f"is a damaged ELF file: section header entries of {header['e_shentsize']} "
            f"bytes, expected {shent}"
        )
    if shoff + shent > size:
        raise ElfCheckError(f"{truncated} its section header table starts at byte {shoff})")
    shnum = int(header["e_shnum"]) or int(_entry(elf, elf.structs.Elf_Shdr, shoff)["sh_size"])
    end = _table_end(shoff, shnum, shent)
    if end > size:
        raise ElfCheckError(f"{truncated} its section header table ends at byte {end})")
    for index in range(shnum):
        section = _entry(elf, elf.structs.Elf_Shdr, shoff + index * shent)
        if str(section["sh_type"]) == _SHT_NOBITS:
            continue
        offset, length = int(section["sh_offset"]), int(section["sh_size"])
        if length and offset + length > size:
            raise ElfCheckError(f"{truncated} its section {index} ends at byte {offset + length})")


def check_shared_library(data: bytes, host: ElfInfo | None = None) -> ElfInfo:
    """Refuse ``data`` unless it is a complete ELF shared library for ``host``.

    ``host`` defaults to :func:`host_elf`; without one (a host that is not ELF) only
    the file's own consistency is checked. Returns the file's :class:`ElfInfo`; raises
    :class:`ElfCheckError`.
    """
    if host is None:
        host = host_elf()
    elf, info = _read_header(data)
    if host is not None and (info.bits, info.little_endian, info.machine) != (
        host.bits,
        host.little_endian,
        host.machine,
    ):
        detailed = info.machine == host.machine or (info.bits, info.little_endian) != (
            host.bits,
            host.little_endian,
        )
        what = FILE_KINDS.get(info.kind, "file")
        raise ElfCheckError(
            f"is an ELF {what} for {info.describe(detailed)}; this host is "
            f"{host.describe(detailed)}"
        )
    if info.kind != "ET_DYN":
        what = FILE_KINDS.get(info.kind, f"file of type {info.kind}")
        hint = " (link it with -shared -fPIC)" if info.kind in ("ET_EXEC", "ET_REL") else ""
        raise ElfCheckError(f"is an ELF {what}, not a shared library{hint}")
    try:
        _check_layout(elf, info, len(data))
    except ElfCheckError:
        raise
    except (ELFError, ValueError, LookupError, OSError) as exc:
        raise ElfCheckError(f"is a damaged ELF file ({exc})") from None
    return info


def check_file(path: Path) -> ElfInfo:
    """:func:`check_shared_library` on the file at ``path`` (an unreadable file is an
    :class:`ElfCheckError` too)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ElfCheckError(f"cannot be read: {exc.strerror or exc}") from None
    return check_shared_library(data)


@functools.cache
def host_elf() -> ElfInfo | None:
    """The running host's class, byte order and machine, from its executable's ELF
    header; ``None`` where the executable is not ELF (so no ELF library can be mapped
    there, and this module's checks do not apply)."""
    for candidate in ("/proc/self/exe", sys.executable):
        if not candidate or not os.path.exists(candidate):
            continue
        try:
            with open(candidate, "rb") as handle:
                head = handle.read(64)
            if not head.startswith(b"\x7fELF"):
                continue
            _, info = _read_header(head)
        except (OSError, ElfCheckError):
            continue
        return info
    return None
