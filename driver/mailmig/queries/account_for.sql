-- account_for: where every staged row of a table ended (staged, loaded, repaired, rejected, unaccounted, doubly)
SELECT staged, loaded, repaired, rejected, unaccounted, doubly FROM migration.account_for(%s)
