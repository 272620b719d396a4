-- The live sync's position per source file: its capture install and last applied seq.
SELECT source, install_id, seq FROM migration.sync_position ORDER BY source
