-- Delete one email by id
DELETE FROM emails WHERE id = :id
