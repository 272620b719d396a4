-- Does mail.* hold no row and migration no reject (a load into it is then the whole state)?
SELECT NOT EXISTS (SELECT 1 FROM mail.emails) AND NOT EXISTS (SELECT 1 FROM mail.accounts)
   AND NOT EXISTS (SELECT 1 FROM mail.sessions) AND NOT EXISTS (SELECT 1 FROM migration.rejects)
