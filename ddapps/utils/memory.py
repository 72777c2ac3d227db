"""Peak memory of a block of work: CUDA allocator peak on GPU, peak resident set size on CPU.

On CPU the measure must hold when a process measures several blocks in turn. Memory a previous
block freed usually stays mapped in the C allocator's arenas, so "peak RSS minus RSS at entry"
would read about 0 for a second, equally large block. At entry :class:`PeakMemory` therefore
collects garbage and hands free heap pages back to the system (glibc ``malloc_trim``), then
resets the kernel's high-water mark (``/proc/self/clear_refs``) so that ``VmHWM`` at exit is the
peak *of the block*. Where either is unavailable (non-Linux, other C libraries) a background
thread samples the RSS instead, which can miss short spikes.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import os
import threading
import time
from types import TracebackType

import torch


def _rss_bytes() -> int:
    """Current resident set size (the lifetime peak from getrusage where /proc is missing)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as handle:
            pages = int(handle.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        import resource

        return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


def _hwm_bytes() -> int | None:
    """The kernel's peak RSS of this process since the last reset (``VmHWM``), if readable."""
    try:
        with open("/proc/self/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _reset_hwm() -> bool:
    """Reset ``VmHWM`` to the current RSS (Linux >= 4.0); False where not permitted."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def release_free_memory() -> None:
    """Collect garbage and return free C-heap pages to the system (glibc only; else a no-op)."""
    gc.collect()
    name = ctypes.util.find_library("c")
    if name is None:
        return
    try:
        libc = ctypes.CDLL(name)
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return
    trim.argtypes = [ctypes.c_size_t]
    trim(0)


class PeakMemory:
    """Context manager measuring the peak memory *added* by the block, in MB (``peak_mb``).

    On CUDA it uses ``torch.cuda.max_memory_allocated`` above the allocation at entry. On CPU it
    is the peak resident set size during the block above the (trimmed) level at entry: exact via
    the kernel's high-water mark on Linux, else sampled every ``interval`` seconds. Reusable: each
    ``with`` block measures itself only.
    """

    def __init__(self, device: str | torch.device = "cpu", interval: float = 0.005) -> None:
        self.device = torch.device(device)
        self.interval = interval
        self.peak_mb = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._base = 0
        self._peak = 0
        self._hwm_reset = False

    def _sample(self) -> None:
        while not self._stop.is_set():
            self._peak = max(self._peak, _rss_bytes())
            time.sleep(self.interval)

    def __enter__(self) -> "PeakMemory":
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self._base = torch.cuda.memory_allocated(self.device)
            return self
        release_free_memory()
        self._hwm_reset = _reset_hwm() and _hwm_bytes() is not None
        self._base = self._peak = _rss_bytes()
        self._stop.clear()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            peak = torch.cuda.max_memory_allocated(self.device)
        else:
            self._stop.set()
            if self._thread is not None:
                self._thread.join()
            peak = max(self._peak, _rss_bytes())
            if self._hwm_reset:
                peak = max(peak, _hwm_bytes() or 0)
        self.peak_mb = max(0.0, (peak - self._base) / 2**20)
