"""One exception tree. Known failures print one line and exit non-zero; no traceback without --debug."""

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


class Interrupted(RelEngError):
    """A signal stopped the run (SIGINT/SIGTERM). Exit 130; never a failure of what it cut short."""

    exit_code = 130


class CommandFailed(RelEngError):
    """A subprocess exited non-zero. Carries argv, exit code and the tail of stderr."""

    def __init__(self, argv: list[str], returncode: int, stderr_tail: str):
        self.argv = list(argv)
        self.returncode = returncode
        self.stderr_tail = stderr_tail
        tail = stderr_tail.strip().splitlines()[-1:] or ["(no stderr)"]
        super().__init__(f"command {argv[0]} exited {returncode}: {tail[0]}")
