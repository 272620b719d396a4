-- staging_progress: per staging table, its size in bytes, its committed rows (statistics, which lag a second) and the rows of a COPY into it still in flight: the progress of the loader
SELECT t AS source_table,
       coalesce(pg_total_relation_size(r.oid), 0) AS bytes,
       coalesce(pg_stat_get_live_tuples(r.oid), 0) AS committed_rows,
       (SELECT coalesce(sum(p.tuples_processed), 0) FROM pg_stat_progress_copy p WHERE p.relid = r.oid) AS rows_in_flight
FROM unnest(%(tables)s::text[]) AS t
LEFT JOIN LATERAL (SELECT to_regclass('staging.' || quote_ident(t)) AS oid) r ON true
