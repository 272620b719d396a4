-- Empty the landing tables (staging.<table> made as the mapping says, staging.hostile), then the batch's keys.
SELECT count(*) FROM migration.prepare_staging();
TRUNCATE staging.sync_keys
