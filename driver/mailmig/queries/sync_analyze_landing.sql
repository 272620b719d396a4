-- Statistics of the landed batch, so that the merge's joins probe indexes for a small batch.
ANALYZE staging.emails, staging.accounts, staging.sessions, staging.hostile, staging.sync_keys
