"""Load order of native libraries that would otherwise clash in one process.

The eccodes wheel (eckitlib) bundles its own copies of libraries that others also load: PROJ
(pyproj) and the TLS/LDAP stack that the system libpq (psycopg) links. Loaded after eccodes,
pyproj binds to the bundled PROJ and crashes, and libpq's libldap double-frees at process exit
(SIGSEGV after every test had passed). Loading those first, once, avoids both. Call
:func:`before_eccodes` before importing eccodes or cfgrib.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util

_DONE = False


def before_eccodes() -> None:
    global _DONE
    if _DONE:
        return
    _DONE = True
    with contextlib.suppress(ImportError):
        import pyproj  # noqa: F401
    name = ctypes.util.find_library("pq")
    if name:
        with contextlib.suppress(OSError):
            ctypes.CDLL(name, mode=ctypes.RTLD_GLOBAL)
