-- The id sequences past every stored id and past SQLite's largest assigned ids (before postgres mode's first write)
SELECT sequence_name, was, now_at FROM mail.ids_past(%(emails)s, %(accounts)s)
