"""Shared entry-point wrapper: a stage that fails on bad input exits non-zero with one clear line."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable

from domaintune.params import ParamsError
from domaintune.records import RecordError


class InputError(ValueError):
    """Bad input data (a raw file, a missing model): the message names the file and what is wrong."""


class GateError(RuntimeError):
    """A quality gate failed (e.g. retention below eval.retention_min with retention_action: fail)."""


def run_stage(main: Callable[[], None]) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    try:
        main()
    except (ParamsError, RecordError, InputError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except GateError as e:
        print(f"gate failed: {e}", file=sys.stderr)
        sys.exit(1)
