-- Delete every email created before the cutoff: the legacy service's retention, one DELETE (text comparison of the UTC 'YYYY-MM-DD HH:MM:SS' form)
DELETE FROM emails WHERE created_at < :cutoff
