-- Mark one email read or unread (0/1, the legacy flag form)
UPDATE emails SET is_read = :flag WHERE id = :id
