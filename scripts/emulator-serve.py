#!/usr/bin/env python3
"""moto's standalone server (`moto_server`), with one change that affects speed only.

    .venv/bin/python scripts/emulator-serve.py -H 127.0.0.1 -p PORT

On every request, moto 5.x's dispatcher asks `moto.backends.list_of_moto_modules()`
whether the Host header names one of its service packages, and that function lists
moto's package directory and stats each of its ~180 entries, twice per request: about
a fifth of the CPU moto spends on a small request. The directory does not change while
the server runs, so this remembers the first answer. Answers, state and the command
line are moto's own; only the repeated directory scan is gone (see
docs/performance.md, "The emulator").
"""

import functools
import sys

import moto.backends as backends
from moto.server import main

_scan = getattr(backends, "list_of_moto_modules", None)
if _scan is not None:
    backends.list_of_moto_modules = functools.cache(lambda: tuple(_scan()))

if __name__ == "__main__":
    sys.exit(main())
