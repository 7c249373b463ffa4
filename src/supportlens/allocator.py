"""Keeps the C allocator from handing the large blocks of one pipe run back to the kernel before
the next run asks for them again.

glibc's malloc serves a block above its mmap threshold from a fresh mapping, which is unmapped when
the block is freed, and it raises that threshold when such a block is freed (the "dynamic"
threshold).  A pipe run at a million tickets allocates and frees many arrays of a few MB to tens
of MB.  Taken from fresh mappings, every run page-faults them in again (the kernel zeroes every
page), and the threads serving requests at the same time contend for the process's mappings.
Where the dynamic threshold ends up depends on what the process happened to do first: a server
that evaluated its SLA states itself had raised it; one that took them up from disk (as after
``supportlens import`` or a restart) had not, and ran ``sla_attainment`` 12 % slower and served
fewer requests under load (docs/decisions.md, "Session 15").  Fixing the threshold at glibc's
maximum, and keeping freed memory at the top of the heap up to a bound, makes every server alike.
"""

from __future__ import annotations

import ctypes
import ctypes.util

# mallopt's parameter numbers (glibc's malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
# Blocks up to this size come from the heap, and are reused: glibc's largest threshold on 64 bits.
MMAP_THRESHOLD_BYTES = 32 * 1024 * 1024
# Free memory at the top of the heap is returned to the system past this much.
TRIM_THRESHOLD_BYTES = 256 * 1024 * 1024


def keep_freed_blocks() -> bool:
    """Sets the thresholds above for the whole process; False where the C library has no
    ``mallopt`` (not glibc), which leaves its allocator as it is."""
    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c")).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)) and bool(
        mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES)
    )
