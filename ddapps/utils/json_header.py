"""The JSON header of a ddapps safetensors file: present, bounded in size, valid JSON, an object.

Shared by every file format that keeps its metadata as JSON in the safetensors header (synthetic
sets, teachers), so a hostile or truncated header fails the same way everywhere.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def parse_json_header(
    source: Path, raw: str | None, *, what: str, missing: str, max_bytes: int, error: type[Exception]
) -> dict[str, Any]:
    """``raw`` parsed as a JSON object; ``error`` with one line naming ``source`` otherwise.

    ``what`` names the header in messages (``"metadata"``); ``missing`` is the message when there is none.
    """
    if raw is None:
        raise error(f"{source} {missing}")
    if len(raw) > max_bytes:
        raise error(f"{source}: {what} larger than {max_bytes} bytes")
    try:
        header = json.loads(raw)
    except json.JSONDecodeError as err:
        raise error(f"{source}: {what} is not valid JSON ({err.msg})") from None
    if not isinstance(header, dict):
        raise error(f"{source}: {what} must be a JSON object")
    return header
