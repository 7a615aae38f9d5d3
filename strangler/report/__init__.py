"""Pure: ledger aggregates -> report -> verdict -> text, HTML and JSON; no IO here."""
