"""Work beside the hot path: ledger-role loops and hooks that never raise into an order's trip."""
