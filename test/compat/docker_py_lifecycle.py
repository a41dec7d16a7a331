#!/usr/bin/python3
# docker-py (Debian's python3-docker) against skiffd: the lifecycle through its high-level API.
# Usage: DOCKER_HOST=unix:///path docker_py_lifecycle.py  — prints one JSON object of results.
import json
import sys

import docker

client = docker.from_env(version="auto", timeout=30)
out = {}
out["ping"] = client.ping()
out["api_version"] = client.api.api_version
c = client.containers.create("busybox", ["sh", "-c", "echo out; echo err >&2; sleep 1000"], name="pylife", labels={"k": "v"}, environment={"A": "1"})
out["created_status"] = c.status
c.start()
c.reload()
out["running"] = c.status
out["labels"] = c.labels
r = c.exec_run(["sh", "-c", "echo $A; exit 3"])
out["exec_exit"] = r.exit_code
out["exec_output"] = r.output.decode()
r2 = c.exec_run(["cat"], stdin=False, demux=True)
out["exec_demux_ok"] = r2.exit_code == 0
out["logs"] = c.logs(stdout=True, stderr=True).decode()
out["logs_stderr"] = c.logs(stdout=False, stderr=True).decode()
out["listed"] = [x.name for x in client.containers.list(filters={"label": "k=v"})]
c.stop(timeout=1)
out["wait"] = c.wait(timeout=10)
c.reload()
out["stopped"] = c.status
out["inspect_exitcode"] = c.attrs["State"]["ExitCode"]
c.remove()
try:
    client.containers.get("pylife")
    out["removed"] = False
except docker.errors.NotFound as e:
    out["removed"] = True
    out["notfound_msg"] = e.explanation
# run: create+start+wait+logs in one call, with auto-remove
out["run_output"] = client.containers.run("busybox", ["echo", "hello from run"], remove=True).decode()
try:
    client.containers.run("busybox", ["sh", "-c", "exit 7"], remove=True)
except docker.errors.ContainerError as e:
    out["run_error_exit"] = e.exit_status
json.dump(out, sys.stdout)
