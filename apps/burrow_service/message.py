"""The message format both services agree on: a JSON object with `id`, `created_at`, `payload`."""

from __future__ import annotations

import json
from typing import Any

MAX_ID_LENGTH = 128


def decode_json(raw: bytes) -> Any:
    """Parse `raw` as JSON; `ValueError` with the reason otherwise."""
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"not valid JSON: {exc}") from None
    except RecursionError:  # json.loads recurses once per nesting level
        raise ValueError("not valid JSON: nested too deeply") from None


def decode_object(raw: bytes) -> dict[str, Any]:
    """Parse `raw` as a JSON object; `ValueError` with the reason otherwise."""
    value = decode_json(raw)
    if not isinstance(value, dict):
        raise ValueError("must be a JSON object")
    return value


def check_id(value: Any) -> str:
    """A message id is a non-empty string of at most 128 characters."""
    if not (isinstance(value, str) and 0 < len(value) <= MAX_ID_LENGTH):
        raise ValueError(f"'id' must be a non-empty string of at most {MAX_ID_LENGTH} characters")
    return value
