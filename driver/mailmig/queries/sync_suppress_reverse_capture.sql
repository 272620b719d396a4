-- Keep this transaction's writes out of the reverse changelog (they came from SQLite).
SELECT migration.suppress_reverse_capture()
