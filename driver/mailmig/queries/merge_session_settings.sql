-- merge_session_settings: a merge connection's settings. A larger GIN pending list is flushed less often, in bigger, cheaper batches; a range is re-done after a crash anyway, so its commit need not wait for the disk
SELECT set_config('gin_pending_list_limit', '32MB', false),
       set_config('work_mem', '64MB', false),
       set_config('synchronous_commit', 'off', false)
