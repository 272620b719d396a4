-- switch_last_switched: the last cut-over or rollback of this kind that switched (run id, when)
SELECT run_id, finished_at FROM migration.switches
WHERE kind = %(kind)s AND outcome = 'switched'
ORDER BY finished_at DESC
LIMIT 1
