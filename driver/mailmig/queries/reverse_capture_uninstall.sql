-- reverse_capture_uninstall: remove reverse capture, its changelog and the reverse sync position
SELECT removed, changelog_rows FROM migration.reverse_capture_uninstall(%(lock_timeout)s)
