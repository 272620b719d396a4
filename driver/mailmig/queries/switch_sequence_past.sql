-- switch_sequence_past: set a sequence past the table's largest id and past a value (SQLite's largest assigned id)
SELECT greatest(migration.sequence_past_max(%(sequence)s::regclass, %(table)s::regclass),
                migration.sequence_at_least(%(sequence)s::regclass, %(value)s))
