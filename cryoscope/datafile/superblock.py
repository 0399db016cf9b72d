"""The HDF5 superblock of a measurement file, read and repaired without the HDF5 library.

Two checks need it before HDF5 touches a file: whether the file is shorter than the end-of-file
address its superblock records (a truncated file; opened in SWMR read mode HDF5 would retry its
metadata reads in back-off loops for many minutes instead of failing), and whether the file
still carries the "open for writing" mark a killed writer leaves. :func:`clear_write_mark` clears
that mark as ``h5clear -s`` does: the consistency-flags byte of a version 2 or 3 superblock is
zeroed and the superblock's checksum written again (HDF5 file format specification, "Version 2
Superblock"; the checksum is Bob Jenkins' lookup3 ``hashlittle`` with initial value 0, as in
HDF5's ``H5_checksum_lookup3``).
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Superblock", "SuperblockError", "clear_write_mark", "lookup3", "read_superblock"]

SIGNATURE = b"\x89HDF\r\n\x1a\n"
#: Where HDF5 looks for the signature: 0, 512, 1024, 2048, ... (a user block may precede it).
_SEARCH_LIMIT = 1 << 20
_MASK = 0xFFFFFFFF


class SuperblockError(ValueError):
    """The file has no readable HDF5 superblock. ``str()`` is one line."""


@dataclass(frozen=True, slots=True)
class Superblock:
    """What the checks need of a superblock."""

    offset: int  #: byte offset of the superblock in the file (the user block's size)
    version: int
    flags: int  #: file consistency flags (versions 2 and 3; 0 for older superblocks)
    eof_address: int  #: end-of-file address (relative to ``offset``); −1: undefined
    size_of_offsets: int

    @property
    def open_for_write(self) -> bool:
        """Whether a writer (possibly a killed one) still marks the file as open."""
        return self.version >= 2 and self.flags != 0

    @property
    def file_end(self) -> int:
        """The file size the superblock promises (bytes), or −1 if undefined."""
        return -1 if self.eof_address < 0 else self.offset + self.eof_address


def _rot(x: int, k: int) -> int:
    return ((x << k) | (x >> (32 - k))) & _MASK


def _mix(a: int, b: int, c: int) -> tuple[int, int, int]:
    a = (a - c) & _MASK
    a ^= _rot(c, 4)
    c = (c + b) & _MASK
    b = (b - a) & _MASK
    b ^= _rot(a, 6)
    a = (a + c) & _MASK
    c = (c - b) & _MASK
    c ^= _rot(b, 8)
    b = (b + a) & _MASK
    a = (a - c) & _MASK
    a ^= _rot(c, 16)
    c = (c + b) & _MASK
    b = (b - a) & _MASK
    b ^= _rot(a, 19)
    a = (a + c) & _MASK
    c = (c - b) & _MASK
    c ^= _rot(b, 4)
    b = (b + a) & _MASK
    return a, b, c


def _final(a: int, b: int, c: int) -> int:
    c ^= b
    c = (c - _rot(b, 14)) & _MASK
    a ^= c
    a = (a - _rot(c, 11)) & _MASK
    b ^= a
    b = (b - _rot(a, 25)) & _MASK
    c ^= b
    c = (c - _rot(b, 16)) & _MASK
    a ^= c
    a = (a - _rot(c, 4)) & _MASK
    b ^= a
    b = (b - _rot(a, 14)) & _MASK
    c ^= b
    c = (c - _rot(b, 24)) & _MASK
    return c


def lookup3(data: bytes, initval: int = 0) -> int:
    """Bob Jenkins' lookup3 ``hashlittle`` (byte-wise, as HDF5 computes its checksums)."""
    length = len(data)
    a = b = c = (0xDEADBEEF + length + initval) & _MASK
    k = 0
    while length - k > 12:
        w = struct.unpack_from("<3I", data, k)
        a, b, c = _mix((a + w[0]) & _MASK, (b + w[1]) & _MASK, (c + w[2]) & _MASK)
        k += 12
    if length - k == 0:
        return c
    tail = data[k:] + bytes(12 - (length - k))
    w = struct.unpack("<3I", tail)
    return _final((a + w[0]) & _MASK, (b + w[1]) & _MASK, (c + w[2]) & _MASK)


def _find(handle: object, size: int) -> int:
    read = handle.read  # type: ignore[attr-defined]
    seek = handle.seek  # type: ignore[attr-defined]
    offset = 0
    while offset < min(size, _SEARCH_LIMIT):
        seek(offset)
        if read(8) == SIGNATURE:
            return offset
        offset = 512 if offset == 0 else offset * 2
    raise SuperblockError("no HDF5 signature")


def read_superblock(path: str | Path) -> Superblock:
    """The superblock of an HDF5 file. Raises :class:`SuperblockError` if there is none or it
    is cut short."""
    with open(path, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        offset = _find(handle, size)
        handle.seek(offset)
        head = handle.read(96)
    version = head[8] if len(head) > 8 else -1
    if version in (2, 3):
        if len(head) < 12:
            raise SuperblockError("superblock cut short")
        n = head[9]
        if n not in (2, 4, 8, 16) or len(head) < 12 + 4 * n + 4:
            raise SuperblockError("superblock cut short")
        fmt = {2: "<H", 4: "<I", 8: "<Q", 16: "<QQ"}[n]
        eof = struct.unpack_from(fmt, head, 12 + 2 * n)[0]
        undefined = eof == (1 << (8 * min(n, 8))) - 1
        return Superblock(offset, version, head[11], -1 if undefined else eof, n)
    if version in (0, 1):
        if len(head) < 16:
            raise SuperblockError("superblock cut short")
        n = head[13]
        extra = 4 if version == 1 else 0
        base = 24 + extra
        if n not in (2, 4, 8) or len(head) < base + 4 * n:
            raise SuperblockError("superblock cut short")
        fmt = {2: "<H", 4: "<I", 8: "<Q"}[n]
        eof = struct.unpack_from(fmt, head, base + 2 * n)[0]
        undefined = eof == (1 << (8 * n)) - 1
        return Superblock(offset, version, 0, -1 if undefined else eof, n)
    raise SuperblockError(f"unknown superblock version {version}")


def clear_write_mark(path: str | Path) -> bool:
    """Clear the "open for writing" mark of a file whose writer died (``h5clear -s``).
    Returns whether there was one to clear."""
    block = read_superblock(path)
    if not block.open_for_write:
        return False
    n = block.size_of_offsets
    length = 12 + 4 * n  # the fields the checksum covers
    with open(path, "r+b") as handle:
        handle.seek(block.offset)
        head = bytearray(handle.read(length))
        head[11] = 0
        handle.seek(block.offset)
        handle.write(bytes(head) + struct.pack("<I", lookup3(bytes(head))))
        handle.flush()
        os.fsync(handle.fileno())
    return True
