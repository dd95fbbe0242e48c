"""A throwaway PostgreSQL cluster for the tests: initdb in a temporary directory, started
with pg_ctl as the ``postgres`` user on a free port, removed at the end.

Local socket connections trust the superuser; TCP needs a scram-sha-256 password, so the
tests can check both a good and a wrong login.
"""

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile

SUPERUSER_PASSWORD = "test-superuser-secret"


def _bindir():
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if not found:
        raise RuntimeError("PostgreSQL server binaries not found: run scripts/bootstrap.sh")
    return os.path.dirname(found[-1])


def _free_port():
    with contextlib.closing(socket.socket()) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    # Throwaway clusters need no durability; a caller may override any setting.
    FAST = dict(fsync="off", synchronous_commit="off", full_page_writes="off", max_wal_size="2GB",
                shared_buffers="256MB")

    def __init__(self, settings=None, hba=None):
        """``settings``: postgresql.conf values over FAST; ``hba``: pg_hba.conf lines replacing
        initdb's (local trust for the superuser socket, scram-sha-256 over TCP)."""
        self.settings = dict(self.FAST, **(settings or {}))
        self.hba = hba
        self.bindir = _bindir()
        self.version = int(self.bindir.split("/")[4])
        self.root = tempfile.mkdtemp(prefix="s2p-pg-")
        self.datadir = os.path.join(self.root, "data")
        self.sockdir = self.root
        self.port = _free_port()
        self.user = None if os.geteuid() else "postgres"

    def _run(self, *argv):
        cmd = list(argv)
        if self.user:
            cmd = ["runuser", "-u", self.user, "--"] + cmd
        return subprocess.run(cmd, check=True, capture_output=True, text=True)

    def start(self):
        if self.user:
            pw = pwd.getpwnam(self.user)
            os.chown(self.root, pw.pw_uid, pw.pw_gid)
        pwfile = os.path.join(self.root, "pw")
        with open(pwfile, "w") as fh:
            fh.write(SUPERUSER_PASSWORD)
        if self.user:
            os.chown(pwfile, pw.pw_uid, pw.pw_gid)
        os.chmod(pwfile, 0o600)
        self._run(f"{self.bindir}/initdb", "-D", self.datadir, "-U", "postgres", "-E", "UTF8", "--locale=C.UTF-8",
                  "--auth-local=trust", "--auth-host=scram-sha-256", f"--pwfile={pwfile}")
        os.unlink(pwfile)
        if self.hba is not None:
            with open(os.path.join(self.datadir, "pg_hba.conf"), "w") as fh:
                fh.write("\n".join(self.hba) + "\n")
        self._start()
        return self

    def _start(self):
        opts = f"-p {self.port} -k {self.sockdir} -c listen_addresses=127.0.0.1 " + " ".join(
            f"-c {k}={v}" for k, v in self.settings.items())
        self._run(f"{self.bindir}/pg_ctl", "-D", self.datadir, "-o", opts, "-l",
                  os.path.join(self.root, "log"), "-w", "start")

    def crash_restart(self):
        """Stop the server as a crash would (``-m immediate``: no shutdown checkpoint), then
        start it: crash recovery runs, as after a power loss."""
        self._run(f"{self.bindir}/pg_ctl", "-D", self.datadir, "-m", "immediate", "-w", "stop")
        self._start()

    def stop(self):
        with contextlib.suppress(subprocess.CalledProcessError):
            self._run(f"{self.bindir}/pg_ctl", "-D", self.datadir, "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)

    def params(self, db="postgres", **over):
        """Module-style connection options for the superuser over the local socket."""
        out = dict(login_unix_socket=self.sockdir, port=self.port, login_user="postgres", db=db)
        out.update(over)
        return out
