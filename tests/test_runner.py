import pytest

from rel_eng import runner
from rel_eng.errors import CommandFailed, ToolMissing


def test_argv_must_be_a_list():
    with pytest.raises(TypeError):
        runner.run("echo hi")


def test_failure_carries_command_exit_code_and_stderr_tail():
    with pytest.raises(CommandFailed) as err:
        runner.run(["sh", "-c", "for i in $(seq 1 50); do echo line$i >&2; done; exit 3"])
    exc = err.value
    assert exc.returncode == 3 and exc.argv[0] == "sh"
    assert exc.stderr_tail.splitlines()[-1] == "line50"
    assert "line30" not in exc.stderr_tail  # only the tail is kept
    assert "exited 3: line50" in str(exc)


def test_missing_tool_names_the_package(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(ToolMissing) as err:
        runner.run(["qemu-img", "--version"])
    assert err.value.exit_code == 2
    assert "apt-get install qemu-utils" in str(err.value)


def test_streaming_pipeline_reports_the_failing_stage():
    proc = runner.start(["sh", "-c", "echo oops >&2; exit 4"])
    proc.stdout.read()
    with pytest.raises(CommandFailed, match="exited 4: oops"):
        runner.wait(proc)
