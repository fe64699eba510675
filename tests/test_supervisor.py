"""The supervisor restarts dead services, gives up on crash loops, stops cleanly."""

import sys
import threading
import time

import pytest

from edge.runtime.supervisor import ChildService, Supervisor
from tests.support.waiting import wait_for

pytestmark = pytest.mark.system


def python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def run_in_thread(supervisor):
    result = {}
    thread = threading.Thread(target=lambda: result.setdefault("code", supervisor.run(poll_s=0.05)))
    thread.start()
    return thread, result


def test_killed_service_is_restarted_and_all_stop_on_request():
    service = ChildService("sleeper", python("import time; time.sleep(60)"))
    supervisor = Supervisor([service], restart_delay_s=0.1)
    thread, result = run_in_thread(supervisor)
    deadline = time.monotonic() + 10
    while service.process is None and time.monotonic() < deadline:
        time.sleep(0.05)
    first_pid = service.process.pid
    service.process.kill()  # kill -9
    while ((service.process is None or service.process.pid == first_pid)
           and time.monotonic() < deadline):
        time.sleep(0.05)
    assert service.process is not None and service.process.pid != first_pid
    process = service.process
    supervisor.stop_event.set()
    thread.join(15)
    assert result["code"] == 0
    assert process.poll() is not None  # the child was stopped too


def test_crash_loop_is_given_up_not_hidden(caplog):
    crasher = ChildService("crasher", python("import sys; sys.exit(3)"))
    supervisor = Supervisor([crasher], restart_delay_s=0.01, restart_burst=3)
    with caplog.at_level("ERROR"):
        assert supervisor.run(poll_s=0.01) == 1
    assert len(crasher.starts) == 3
    assert "crasher exited 3 times" in caplog.text and "last exit code 3" in caplog.text


def test_config_error_is_not_restarted(caplog):
    bad = ChildService("bad-config", python("import sys; sys.exit(78)"))
    supervisor = Supervisor([bad], restart_delay_s=0.01)
    with caplog.at_level("ERROR"):
        assert supervisor.run(poll_s=0.01) == 1
    assert len(bad.starts) == 1
    assert "refused its configuration" in caplog.text


def test_child_ignoring_sigterm_is_killed():
    stubborn = ChildService(
        "stubborn",
        python("import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
               "print('up', flush=True); time.sleep(60)"),
    )
    supervisor = Supervisor([stubborn], stop_timeout_s=0.5)
    thread, _ = run_in_thread(supervisor)
    time.sleep(1.0)
    process = stubborn.process
    started = time.monotonic()
    supervisor.stop_event.set()
    thread.join(15)
    assert process.poll() is not None
    assert time.monotonic() - started < 5


def test_a_periodic_job_runs_again_and_is_never_given_up(caplog):
    """The retention purge under `edge run`: started again every_s after each exit,
    failed runs included (like a systemd timer), and never counted as a crash loop."""
    ok = ChildService("purge", python("import sys; sys.exit(0)"), every_s=0.05)
    failing = ChildService("purge-bad", python("import sys; sys.exit(3)"), every_s=0.05)
    supervisor = Supervisor([ok, failing], restart_burst=2)
    thread, result = run_in_thread(supervisor)
    deadline = time.monotonic() + 20
    while (len(ok.starts) < 4 or len(failing.starts) < 4) and time.monotonic() < deadline:
        time.sleep(0.05)
    supervisor.stop_event.set()
    thread.join(15)
    assert len(ok.starts) >= 4 and len(failing.starts) >= 4
    assert not ok.given_up and not failing.given_up and result["code"] == 0


def test_the_box_runs_the_retention_purge(pets_site):
    from pathlib import Path

    from edge.runtime.supervisor import services_for

    purge = [s for s in services_for(pets_site, Path("/etc/site.yaml")) if s.name == "purge"]
    assert purge and purge[0].argv[-3:] == ["purge", "--config", "/etc/site.yaml"]
    assert purge[0].every_s == pets_site.service.purge_interval_s == 3600


def test_a_second_edge_run_refuses_at_once(tmp_path):
    """Regression: a second `edge run` started a second copy of every service; each was
    refused by its own lock ("another camera-view001 is already running") and restarted
    in a loop. The supervisor now holds a lock of its own."""
    import socket
    import subprocess

    from tests.support.live_site import live_site_yaml

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = live_site_yaml(tmp_path, "usb:0", sections={
        "cameras": [], "sync": {"enabled": False},
        "web": {"access": "open-lan", "host": "127.0.0.1", "port": port}})
    command = [sys.executable, "-m", "edge", "run", "--config", str(config)]
    first = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lock = tmp_path / "state" / "locks" / "supervisor.lock"
        deadline = time.monotonic() + 60
        while not (lock.exists() and lock.read_text().strip() == str(first.pid)):
            assert time.monotonic() < deadline and first.poll() is None
            time.sleep(0.1)
        started = time.monotonic()
        second = subprocess.run(command, capture_output=True, text=True, timeout=60)
        assert time.monotonic() - started < 30
        assert second.returncode == 1 and "Running store" not in second.stdout
        assert second.stderr.splitlines() == [
            f"Error: another supervisor is already running (pid {first.pid}); stop it first "
            "(Ctrl-C in its terminal, or kill that pid); one `edge run` runs every service"]
    finally:
        first.terminate()
        first.wait(30)
    assert first.returncode == 0  # SIGTERM is a clean stop


def _web_only_site(tmp_path):
    import socket

    from tests.support.live_site import live_site_yaml

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return live_site_yaml(tmp_path, "usb:0", sections={
        "cameras": [], "sync": {"enabled": False},
        "web": {"access": "open-lan", "host": "127.0.0.1", "port": port}})


def _lock_holder(tmp_path, role: str, other_than: int | None = None) -> int | None:
    """The live pid in ``<state>/locks/<role>.lock``, if any (and not ``other_than``)."""
    from edge.processes import start_ticks

    lock = tmp_path / "state" / "locks" / f"{role}.lock"
    text = lock.read_text().strip() if lock.exists() else ""
    if not text.isdigit() or int(text) == other_than or start_ticks(int(text)) is None:
        return None
    return int(text)


def test_children_die_with_a_killed_edge_run_and_the_next_one_starts(tmp_path):
    """Field failure (issue 18): `kill -9` of the `edge run` supervisor orphaned its
    children, which kept running with health `ok`; the next `edge run` then gave up,
    each new child refused by the lock an orphan still held."""
    import signal
    import subprocess

    from edge.processes import start_ticks

    command = [sys.executable, "-m", "edge", "run", "--config", str(_web_only_site(tmp_path))]
    first = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    second = None
    try:
        web = wait_for(lambda: _lock_holder(tmp_path, "web"), 60, "the web service's lock")
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        wait_for(lambda: start_ticks(web) is None, 15, f"the orphaned web service {web} to stop")
        second = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                  text=True)
        wait_for(lambda: _lock_holder(tmp_path, "web", other_than=web), 60,
                 "the next edge run's web service")
        assert second.poll() is None
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.terminate()
                process.wait(30)
    assert second.returncode == 0, second.stderr.read()


def test_the_next_edge_run_stops_children_a_killed_one_left(tmp_path):
    """A child that outlived its supervisor (one that ignores SIGTERM, say) is stopped by
    the next supervisor, from the pids the killed one recorded; a recorded pid now used by
    another process (different start time) is left alone."""
    import json
    import os
    import subprocess

    from edge.processes import ProcessId

    stubborn = subprocess.Popen(python(
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)"))
    try:
        time.sleep(0.3)
        record = tmp_path / "supervisor.children.json"
        me = ProcessId.current()
        child = ProcessId.of(stubborn.pid)
        record.write_text(json.dumps([
            {"name": "camera-door", "pid": child.pid, "start": child.start, "boot": child.boot},
            {"name": "reused", "pid": os.getppid(), "start": -1, "boot": me.boot},
        ]))
        supervisor = Supervisor([], stop_timeout_s=0.5, children_file=record)
        assert supervisor.stop_stale_children() == [stubborn.pid]
        assert stubborn.wait(5) == -9
        assert not record.exists()
    finally:
        if stubborn.poll() is None:
            stubborn.kill()
            stubborn.wait()


def test_children_dump_no_core(tmp_path):
    """Field report: a crashing camera worker could leave its frames (faces) on disk as a
    core dump. The units say LimitCORE=0; `edge run` gives its children the same limit,
    whatever the shell it was started from allows."""
    import resource

    out = tmp_path / "limit.txt"
    child = ChildService("limits", python(
        "import resource, sys; "
        f"open({str(out)!r}, 'w').write(repr(resource.getrlimit(resource.RLIMIT_CORE)))"))
    before = resource.getrlimit(resource.RLIMIT_CORE)
    resource.setrlimit(resource.RLIMIT_CORE, (before[1], before[1]))  # a shell allowing cores
    try:
        supervisor = Supervisor([child], restart_delay_s=0.01, restart_burst=1)
        thread, _ = run_in_thread(supervisor)
        wait_for(lambda: out.exists() and out.read_text(), timeout_s=20)
        supervisor.stop_event.set()
        thread.join(15)
    finally:
        resource.setrlimit(resource.RLIMIT_CORE, before)
    assert out.read_text() == "(0, 0)"
