"""Operations on a whole deployment's data (backups), run by the command line and the scheduler."""
