-- Star or unstar one email (0/1, the legacy flag form)
UPDATE emails SET starred = :flag WHERE id = :id
