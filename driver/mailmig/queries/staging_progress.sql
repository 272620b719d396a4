-- staging_progress: per staging table, its size in bytes and the rows of a COPY into it still in flight (progress while the loader fills staging)
SELECT t AS source_table,
       coalesce(pg_total_relation_size(to_regclass('staging.' || quote_ident(t))), 0) AS bytes,
       (SELECT coalesce(sum(p.tuples_processed), 0) FROM pg_stat_progress_copy p
        WHERE p.relid = to_regclass('staging.' || quote_ident(t))) AS rows_in_flight
FROM unnest(%(tables)s::text[]) AS t
