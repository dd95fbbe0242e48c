"""Shell commands that stop and check the test app (``writer.py``) by its pid file, as an
operator's ``migration_app_stop_command`` and ``migration_health_command`` would.

The app is started detached (``nohup ... &``), so once it exits it is an orphan's zombie until
init reaps it, and a container's or a VM's minimal init may do that only every few seconds.
``kill -0`` still succeeds on a zombie: these commands read the process state instead, so a
stop waits only for the app's own exit, and a health check fails as soon as the app is dead.
"""


def alive_command(pidfile):
    """Succeeds while the process in ``pidfile`` runs (not gone, not a zombie)."""
    return f's=$(ps -o stat= -p "$(cat {pidfile})") && [ "${{s#Z}}" = "$s" ]'


def stop_command(pidfile, poll=0.05):
    """SIGTERM, then wait until the process has exited."""
    return f"kill $(cat {pidfile}) && while {alive_command(pidfile)}; do sleep {poll}; done"
