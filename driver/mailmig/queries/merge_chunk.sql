-- merge_chunk: one block range of staging merged in one transaction (its counts)
SELECT fast, loaded, repaired, rejected, present, fallback FROM migration.merge_chunk(%s, %s, %s, %s)
