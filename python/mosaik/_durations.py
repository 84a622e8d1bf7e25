"""The type of duration arguments: float seconds or a `datetime.timedelta`.

They are checked natively, once per setting, where the setting is defined."""

from __future__ import annotations

from datetime import timedelta

Duration = float | int | timedelta
