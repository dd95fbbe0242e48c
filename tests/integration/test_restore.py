"""playbooks/restore.yml's refusals, run for real on this machine: each says what to pass,
and none touches anything (the restore drill itself runs in molecule default)."""

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def refused(*extra):
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"))
    proc = subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", "localhost,",
                           "-c", "local", "-e", f"ansible_python_interpreter={sys.executable}",
                           "-e", "restore_hosts=all", os.path.join(ROOT, "playbooks", "restore.yml"), *extra],
                          cwd=ROOT, env=env, capture_output=True, text=True)
    assert proc.returncode != 0, proc.stdout[-3000:]
    assert "Traceback" not in proc.stdout + proc.stderr
    return " ".join(proc.stdout.split())


def test_no_database_to_prove_says_to_pass_one():
    out = refused()
    assert "No database to prove" in out and "-e restore_database=NAME" in out


@pytest.mark.parametrize("extra, named", [
    (("-e", "restore_port=5432"), "restore_port (5432)"),
    (("-e", "restore_scratch_dir=/var/lib"), "restore_scratch_dir (/var/lib)"),
])
def test_the_main_clusters_port_or_a_system_directory_is_refused(extra, named):
    out = refused("-e", "restore_database=idea_planner", *extra)
    assert named in out and "must not be the main cluster's" in out
