-- validate_session_settings: a validate connection's settings: no JIT (compiling the wide canonical expressions costs more than it saves)
SELECT set_config('jit', 'off', false)
