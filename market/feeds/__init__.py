"""Per-exchange adapters, sans-I/O: URLs, subscribe frames, and ``parse(raw, received_at)``."""
