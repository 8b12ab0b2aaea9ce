"""The demo's calendar: two years of history and when in it people buy."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np

DEFAULT_END = date(2025, 12, 31)
DAYS = 730  # two years of history
LAST_DAY = DAYS - 1  # day index of the end date

# Relative order intensity by hour of day (0-23): quiet nights, an evening peak.
HOUR_WEIGHTS = np.array(
    [1, 0.5, 0.3, 0.2, 0.2, 0.3, 0.8, 1.5, 2.5, 3, 3.2, 3.5]
    + [4, 3.8, 3.5, 3.4, 3.5, 4, 4.8, 5.5, 6, 5.5, 4, 2]
)


def daily_weights(start: date, n_days: int) -> np.ndarray:
    """Relative purchase intensity per day: weekly cycle, yearly wave and a holiday peak."""
    days = np.array([start + timedelta(days=int(i)) for i in range(n_days)])
    weekday = np.array([d.weekday() for d in days])
    doy = np.array([d.timetuple().tm_yday for d in days])
    weekly = np.array([0.95, 0.92, 0.95, 1.0, 1.1, 1.3, 1.25])[weekday]
    yearly = 1 + 0.2 * np.sin(2 * np.pi * (doy - 100) / 365.25)
    holiday = np.where((doy >= 325) & (doy <= 358), 1.6, 1.0)  # late Nov to Christmas
    return weekly * yearly * holiday


def epoch_seconds(day: date) -> int:
    """Seconds from 1970-01-01 to the start of ``day``."""
    return int((day - date(1970, 1, 1)).days) * 86400
