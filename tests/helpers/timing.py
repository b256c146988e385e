"""The workers' delays in tests: small and deterministic (no jitter), so the suite is fast and a
delay can be asserted."""

from __future__ import annotations

from market.worker import Timing

FAST = Timing(
    backoff_initial=0.05,
    backoff_factor=2.0,
    backoff_cap=0.4,
    backoff_jitter=0.0,
    blocked_retry=2.0,
    status_interval=0.05,
    snapshot_retry_initial=0.05,
    snapshot_retry_cap=0.4,
    snapshot_too_old_retry=0.05,
    resync_calm=1.0,
    mock_interval=0.05,
    close_timeout=0.5,
)
