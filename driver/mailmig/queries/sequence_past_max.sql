-- sequence_past_max: a table's id sequence set past its largest id (never moved back)
SELECT migration.sequence_past_max(%s, %s)
