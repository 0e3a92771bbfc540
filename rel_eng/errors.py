"""One exception tree. Known failures print one line and exit non-zero; no traceback without --debug.

Each class means one thing, and its exit code says which (the README's table of exit codes):

    0    done
    1    RelEngError: the work failed (a build, a check, a verification, a conflict found while
         writing, a disk that filled after files were written); also any bug
    2    InputError: bad input, found before anything was written
    130  Interrupted by SIGINT (Ctrl-C);  143  Interrupted by SIGTERM (128 + the signal)
"""

import errno
import signal

import re

# C0 and C1 controls and DEL: an ESC sequence from a file must not reach the terminal.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def one_line(text: str) -> str:
    """`text` as one printable line: whitespace runs become one space, every other control
    character is shown escaped (`\\x1b`), never sent to the terminal."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", " ".join(text.split()))


class RelEngError(Exception):
    """Base of every error this project raises on purpose."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class InputError(RelEngError):
    """The user's input (config, release, kickstart, output dir) is invalid. Exit 2."""

    exit_code = 2


class ConfigError(InputError):
    """Every problem found in one validation pass, each with its file and key."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__("; ".join(self.problems))


class ToolMissing(InputError):
    def __init__(self, tool: str, package: str):
        super().__init__(
            f"required tool '{tool}' is not installed",
            hint=f"install it with: apt-get install {package}",
        )
        self.tool = tool
        self.package = package


class Conflict(RelEngError):
    """Found while writing: what is already there differs from what this run would write (a
    file in the mirror, a Koji build of the same NVR). Files may exist by then, so it is not
    bad input: exit 1, and what was already there is left as it was."""


class WriteFailed(RelEngError):
    """An OSError (a full disk, a read-only mount) once a run had started writing: exit 1, not
    the exit 2 of bad input, since files were written. The line names the path and the errno."""

    def __init__(self, exc: OSError):
        super().__init__(os_error_line(exc))
        self.os_error = exc


def os_error_line(exc: OSError) -> str:
    """`PATH: No space left on device (ENOSPC)`: the path and the errno, never a traceback."""
    name = errno.errorcode.get(exc.errno, "") if exc.errno else ""
    what = exc.strerror or str(exc)
    where = ": ".join(str(f) for f in (exc.filename, exc.filename2) if f is not None)
    return f"{where + ': ' if where else ''}{what}{f' ({name})' if name else ''}"


class writing:
    """Around the part of a run that writes: an OSError inside becomes WriteFailed (exit 1)."""

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None and issubclass(exc_type, OSError):
            raise WriteFailed(exc) from exc
        return False


class VerifyFailed(RelEngError):
    """Bytes read back differ from the digest recorded for them. Exit 1."""


class FixtureFailed(RelEngError):
    """The test appliance could not be assembled (a tool's output it cannot use). Exit 1."""


class Interrupted(RelEngError):
    """A signal stopped the run; never a failure of what it cut short. Exit 128 + the signal:
    130 for SIGINT, 143 for SIGTERM (rel_eng.signals raises it)."""

    def __init__(self, message: str, hint: str | None = None, signum: int = signal.SIGINT):
        super().__init__(message, hint)
        self.signum = int(signum)

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


class CommandFailed(RelEngError):
    """A subprocess exited non-zero. Carries argv, exit code and the tail of stderr."""

    def __init__(self, argv: list[str], returncode: int, stderr_tail: str):
        self.argv = list(argv)
        self.returncode = returncode
        self.stderr_tail = stderr_tail
        tail = stderr_tail.strip().splitlines()[-1:] or ["(no stderr)"]
        super().__init__(f"command {argv[0]} exited {returncode}: {tail[0]}")


class TimedOut(CommandFailed):
    """A subprocess ran past its deadline and was killed."""
