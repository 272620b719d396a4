-- switch_reverse_capture_state: is reverse capture installed completely, and what is missing
SELECT installed, missing FROM migration.reverse_capture_state()
