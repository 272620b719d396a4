-- switch_sync_status: per source file, is the sync following, how old its heartbeat is and its lag (the cut-over's pre-check)
SELECT source, following, heartbeat_age_seconds, lag_seconds FROM migration.sync_status(clock_timestamp())
