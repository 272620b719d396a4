-- Has the sync applied the changes of a source file up to a changelog seq?
SELECT migration.sync_caught_up(%(source)s, %(seq)s)
