-- reverse_changelog_prune: delete a small batch of reverse changelog rows already carried to SQLite
SELECT migration.reverse_changelog_prune(%(limit)s)
