"""The cut-over and the rollback: switching the application's store in a measured write pause.

  writes     how writes are held and switched: the service's control calls, or shell hooks
  procedure  the frame both share: the lock, pre-checks, the pause and its hard limit, the record
  cutover    SQLite to PostgreSQL (`mailmig cutover`)
  rollback   PostgreSQL back to SQLite, keeping every email received (`mailmig rollback`)
  command    the command lines and what they print
"""

from mailmig.switch.command import add_commands
from mailmig.switch.cutover import run_cutover
from mailmig.switch.procedure import Outcome, Settings
from mailmig.switch.rollback import run_rollback

__all__ = ["Outcome", "Settings", "add_commands", "run_cutover", "run_rollback"]
