-- Apply the landed batch and advance the position in this transaction: the batch's row.
SELECT batch_id, keys, pulled, loaded, repaired, rejected, deleted
FROM migration.sync_apply_batch(%(run_id)s, %(source)s, %(install_id)s, %(from_seq)s, %(to_seq)s,
                                %(to_seq_at)s, %(changes)s, %(path)s)
