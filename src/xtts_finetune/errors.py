"""The one exception type users see: it says what went wrong, with which file, and how to fix it."""


class UserError(Exception):
    """A problem the user can fix. Interfaces show `str(err)` without a traceback.

    Write messages as: what happened, naming the file or setting, then the fix.
    """

    def __init__(self, message: str, *, fix: str | None = None):
        self.fix = fix
        super().__init__(f"{message}\n  fix: {fix}" if fix else message)
