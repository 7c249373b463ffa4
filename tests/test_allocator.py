"""``allocator.keep_freed_blocks``: a large block freed by one pipe run is reused by the next one
instead of being mapped, and page-faulted in, again.  Each case runs in a fresh interpreter: the
allocator's state is per process and shaped by everything the process did before."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from supportlens.allocator import MMAP_THRESHOLD_BYTES

# Three times: allocate and free a block just under the threshold, counting the page faults each
# allocation (and first touch) costs.
_PROBE = textwrap.dedent(
    f"""
    import resource, sys
    import numpy as np
    from supportlens.allocator import keep_freed_blocks

    if sys.argv[1] == "tuned" and not keep_freed_blocks():
        sys.exit("mallopt refused")

    def faults():
        return resource.getrusage(resource.RUSAGE_SELF).ru_minflt

    for _ in range(3):
        before = faults()
        block = np.ones({(MMAP_THRESHOLD_BYTES * 3 // 4) // 8}, dtype=np.int64)
        del block
        print(faults() - before)
    """
)


def _faults(mode: str) -> list[int]:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, mode], capture_output=True, text=True, check=True, timeout=60
    )
    return [int(line) for line in done.stdout.split()]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="mallopt is glibc's (Linux)")
def test_a_freed_large_block_is_reused_without_page_faults() -> None:
    first, second, third = _faults("tuned")
    assert first > 100  # the block was faulted in once...
    assert second < first // 10  # ...and not again
    assert third < first // 10


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="mallopt is glibc's (Linux)")
def test_untuned_the_second_block_is_faulted_in_again() -> None:
    """What the tuning changes: glibc maps a block this large afresh until a free has raised its
    threshold, so the second allocation pays the page faults again."""
    first, second, _ = _faults("plain")
    assert second > first // 2
