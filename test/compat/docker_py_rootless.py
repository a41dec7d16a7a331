#!/usr/bin/python3
# docker-py (Debian's python3-docker) against a rootless skiffd, run as its user: a run with
# auto-remove, and a published port reached from the host's loopback (rootlesskit's port driver).
# Usage: DOCKER_HOST=unix:///path docker_py_rootless.py PORT  — prints one JSON object of results.
import json
import sys
import time
import urllib.request

import docker

port = int(sys.argv[1])
client = docker.from_env(version="auto", timeout=60)
out = {"ping": client.ping()}
out["run_output"] = client.containers.run("busybox", ["echo", "hi"], remove=True).decode()
c = client.containers.run(
    "busybox",
    ["sh", "-c", "mkdir /www && echo from-docker-py > /www/index.html && exec httpd -f -p 80 -h /www"],
    detach=True,
    name="pyweb",
    ports={"80/tcp": ("127.0.0.1", port)},
)
try:
    c.reload()
    out["ports"] = c.ports
    body = None
    for _ in range(100):
        try:
            body = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5).read().decode()
            break
        except OSError:
            time.sleep(0.1)
    out["body"] = body
finally:
    c.remove(force=True)
out["left"] = [x.name for x in client.containers.list(all=True, filters={"name": "pyweb"})]
json.dump(out, sys.stdout)
