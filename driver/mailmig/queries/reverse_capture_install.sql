-- reverse_capture_install: attach reverse capture to mail.* (idempotent): install id, what was created, already installed?
SELECT install_id, created, already FROM migration.reverse_capture_install(%(lock_timeout)s)
