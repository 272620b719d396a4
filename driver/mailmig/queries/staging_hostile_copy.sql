-- staging_hostile_copy: the hostile rows of a table, stored whole (typed JSON) beside the loader
COPY staging.hostile (source_table, source_key, original) FROM STDIN
