-- merge_hostile: the hostile rows of one table through the row path (its counts)
SELECT loaded, repaired, rejected, present FROM migration.merge_hostile(%s, %s)
