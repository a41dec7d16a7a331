#!/usr/bin/python3
# docker-py (Debian's python3-docker) against skiffd in swarm mode: the swarm, node, service,
# secret and config calls docker-py's own integration tests make (api_swarm_test, api_service_test,
# api_secret_test, api_config_test, models_*_test), with the assertions they make.
# Usage: DOCKER_HOST=unix:///path SWARM_ADDR=<ip> docker_py_swarm.py — prints one JSON object:
# {"failed": {check: error}, "passed": [check, ...]}; the node leaves the swarm at the end.
import json
import os
import time
import traceback

import docker
from docker import types

client = docker.from_env(version="auto", timeout=60)
api = client.api
ip = os.environ["SWARM_ADDR"]
passed = []
failed = {}
created = {"services": [], "secrets": [], "configs": []}


def check(name):
    def run(fn):
        try:
            fn()
            passed.append(name)
        except Exception as e:  # noqa: BLE001 - every failure is reported, the rest goes on
            failed[name] = "%s: %s\n%s" % (type(e).__name__, e, traceback.format_exc(limit=3)[-600:])
        return fn

    return run


def raises(exc, fn, *a, **kw):
    try:
        fn(*a, **kw)
    except exc as e:
        return e
    raise AssertionError("%s did not raise %s" % (getattr(fn, "__name__", fn), exc.__name__))


def wait_for(cond, what, timeout=30):
    end = time.time() + timeout
    while time.time() < end:
        r = cond()
        if r:
            return r
        time.sleep(0.3)
    raise AssertionError("timed out waiting for " + what)


n = [0]


def svc_name():
    n[0] += 1
    return "dockerpytest_%d" % n[0]


def make(tmpl, **kw):
    name = kw.pop("name", None) or svc_name()
    r = api.create_service(tmpl, name=name, **kw)
    created["services"].append(r["ID"])
    return name, r


def spec_of(r):
    return api.inspect_service(r)["Spec"]


def simple(cmd=("true",), **cs):
    return types.TaskTemplate(types.ContainerSpec("busybox", list(cmd), **cs))


# --- the swarm ------------------------------------------------------------------------------
try:
    api.leave_swarm(force=True)
except docker.errors.APIError:
    pass


@check("init_swarm with options")
def _():
    spec = api.create_swarm_spec(snapshot_interval=5000, log_entries_for_slow_followers=1200)
    node_id = api.init_swarm(advertise_addr=ip, listen_addr=ip + ":2377", swarm_spec=spec, default_addr_pool=["10.123.0.0/16"], subnet_size=26)
    assert isinstance(node_id, str) and len(node_id) == 25, node_id
    info = api.inspect_swarm()
    assert info["Spec"]["Raft"]["SnapshotInterval"] == 5000, info["Spec"]["Raft"]
    assert info["Spec"]["Raft"]["LogEntriesForSlowFollowers"] == 1200, info["Spec"]["Raft"]
    assert info["DefaultAddrPool"] == ["10.123.0.0/16"], info.get("DefaultAddrPool")
    assert info["SubnetSize"] == 26, info.get("SubnetSize")
    assert info["JoinTokens"]["Worker"].startswith("SWMTKN-1-")


@check("init_swarm again is an error")
def _():
    e = raises(docker.errors.APIError, api.init_swarm, advertise_addr=ip, listen_addr=ip + ":2377")
    assert e.response.status_code == 503, e.response.status_code


@check("update_swarm: raft spec, cert expiry, worker token rotated")
def _():
    i1 = api.inspect_swarm()
    spec = api.create_swarm_spec(snapshot_interval=5000, log_entries_for_slow_followers=1200, node_cert_expiry=7776000000000000)
    assert api.update_swarm(version=i1["Version"]["Index"], swarm_spec=spec, rotate_worker_token=True)
    i2 = api.inspect_swarm()
    assert i1["Version"]["Index"] != i2["Version"]["Index"]
    assert i2["Spec"]["Raft"]["SnapshotInterval"] == 5000
    assert i2["Spec"]["CAConfig"]["NodeCertExpiry"] == 7776000000000000, i2["Spec"].get("CAConfig")
    assert i1["JoinTokens"]["Manager"] == i2["JoinTokens"]["Manager"]
    assert i1["JoinTokens"]["Worker"] != i2["JoinTokens"]["Worker"]


@check("update_swarm: another name is refused")
def _():
    i1 = api.inspect_swarm()
    spec = api.create_swarm_spec(node_cert_expiry=7776000000000000, name="reimuhakurei")
    e = raises(docker.errors.APIError, api.update_swarm, version=i1["Version"]["Index"], swarm_spec=spec)
    assert e.response.status_code == 400, e.response.status_code
    assert "swarm spec must be named" in e.explanation, e.explanation


@check("models: swarm attrs, reload, update rotating the manager token")
def _():
    s = client.swarm
    s.reload()
    assert s.id and s.version, s.attrs
    before = s.attrs["JoinTokens"]["Manager"]
    s.update(rotate_manager_token=True, snapshot_interval=5000)
    s.reload()
    assert s.attrs["JoinTokens"]["Manager"] != before
    assert s.attrs["Spec"]["Raft"]["SnapshotInterval"] == 5000


@check("join_swarm from a second daemon with the worker token; it leaves; the manager removes its node")
def _():
    other = docker.DockerClient(base_url=os.environ["JOIN_HOST"], version="auto", timeout=60)
    other_ip = os.environ["JOIN_ADDR"]
    tokens = api.inspect_swarm()["JoinTokens"]
    assert other.api.join_swarm([ip + ":2377"], tokens["Worker"], listen_addr=other_ip + ":2377", advertise_addr=other_ip)
    wait_for(lambda: len(api.nodes()) == 2, "two nodes")
    info = other.info()["Swarm"]
    assert info["LocalNodeState"] == "active" and info["ControlAvailable"] is False, info
    worker = [n for n in api.nodes() if n["ID"] == info["NodeID"]][0]
    assert worker["Spec"]["Role"] == "worker" and worker["Status"]["Addr"] == other_ip, worker
    e = raises(docker.errors.APIError, other.api.inspect_swarm)
    assert e.response.status_code == 503, e.response.status_code
    assert other.swarm.leave()
    assert other.info()["Swarm"]["LocalNodeState"] == "inactive"
    wait_for(lambda: api.inspect_node(info["NodeID"])["Status"]["State"] == "down", "the worker down")
    assert api.remove_node(info["NodeID"])
    assert len(api.nodes()) == 1


# --- nodes ----------------------------------------------------------------------------------
@check("nodes: list, filters, inspect")
def _():
    nodes = api.nodes()
    assert len(nodes) == 1
    node = nodes[0]
    assert "ID" in node and node["Spec"]["Role"] == "manager"
    assert len(api.nodes(filters={"id": node["ID"]})) == 1
    assert len(api.nodes(filters={"role": "worker"})) == 0
    assert len(api.nodes(filters={"role": "manager"})) == 1
    d = api.inspect_node(node["ID"])
    assert d["ID"] == node["ID"] and d["Version"] == node["Version"]
    assert d["Status"]["State"] == "ready" and d["ManagerStatus"]["Leader"] is True, d
    assert d["Description"]["Hostname"] and d["Description"]["Engine"]["EngineVersion"], d["Description"]


@check("update_node: labels on, then the original spec back")
def _():
    node = api.nodes()[0]
    orig = node["Spec"]
    new = dict(orig, Labels={"new.label": "new value"})
    api.update_node(node_id=node["ID"], version=node["Version"]["Index"], node_spec=new)
    upd = api.inspect_node(node["ID"])
    assert new == upd["Spec"], upd["Spec"]
    api.update_node(node_id=node["ID"], version=upd["Version"]["Index"], node_spec=orig)
    assert orig == api.inspect_node(node["ID"])["Spec"]


@check("remove_node: unknown is NotFound, the manager itself refused")
def _():
    node_id = api.nodes()[0]["ID"]
    raises(docker.errors.NotFound, api.remove_node, "foobar01")
    e = raises(docker.errors.APIError, api.remove_node, node_id)
    assert e.response.status_code >= 400
    e = raises(docker.errors.APIError, api.remove_node, node_id, True)
    assert e.response.status_code >= 400


@check("models: nodes list, get, update")
def _():
    nodes = client.nodes.list()
    assert len(nodes) == 1 and nodes[0].attrs["Spec"]["Role"] == "manager"
    node = client.nodes.get(nodes[0].id)
    spec = node.attrs["Spec"]
    spec["Labels"]["foo"] = "bar"
    node.update(spec)
    node.reload()
    assert node.attrs["Spec"]["Labels"]["foo"] == "bar"
    assert client.nodes.list(filters={"role": "manager"})[0].id == node.id


# --- secrets and configs --------------------------------------------------------------------
secret_id = None
config_id = None


@check("secrets: create, inspect, list, duplicate refused")
def _():
    global secret_id
    secret_id = api.create_secret("favorite_touhou", b"phantasmagoria of flower view", labels={"a": "b"})["ID"]
    created["secrets"].append(secret_id)
    d = api.inspect_secret(secret_id)
    assert d["Spec"]["Name"] == "favorite_touhou" and d["Spec"]["Labels"] == {"a": "b"}
    assert "Data" not in d["Spec"]
    assert [x["ID"] for x in api.secrets(filters={"names": ["favorite_touhou"]})] == [secret_id]
    e = raises(docker.errors.APIError, api.create_secret, "favorite_touhou", b"x")
    assert e.response.status_code == 409, e.response.status_code
    uid = api.create_secret("unicode_secret", "東方花映塚".encode("utf-8"))["ID"]
    assert api.remove_secret(uid)
    raises(docker.errors.NotFound, api.inspect_secret, uid)


@check("configs: create, inspect (data shown), list")
def _():
    global config_id
    config_id = api.create_config("favorite_character", b"sakuya izayoi", labels={"c": "d"})["ID"]
    created["configs"].append(config_id)
    d = api.inspect_config(config_id)
    assert d["Spec"]["Name"] == "favorite_character" and d["Spec"]["Labels"] == {"c": "d"}
    assert d["Spec"]["Data"] == "c2FrdXlhIGl6YXlvaQ==", d["Spec"]
    assert [x["ID"] for x in api.configs(filters={"name": ["favorite_character"]})] == [config_id]


@check("models: secrets and configs")
def _():
    s = client.secrets.create(name="model_secret", data="secret data")
    assert client.secrets.get(s.id).name == "model_secret"
    assert s.id in [x.id for x in client.secrets.list()]
    s.remove()
    c = client.configs.create(name="model_config", data="config data")
    assert client.configs.get(c.id).name == "model_config"
    c.remove()


# --- services -------------------------------------------------------------------------------
@check("create_service, list by name prefix, inspect by id and name, remove")
def _():
    name, r = make(simple(["echo", "hello"]))
    assert set(r) >= {"ID"}, r
    assert api.inspect_service(r)["ID"] == r["ID"]
    assert api.inspect_service(name)["ID"] == r["ID"]
    assert len(api.services(filters={"name": "dockerpytest_"})) >= 1
    assert [s["ID"] for s in api.services(filters={"name": name})] == [r["ID"]]
    assert api.remove_service(name)
    assert api.services(filters={"name": name}) == []
    raises(docker.errors.NotFound, api.inspect_service, name)


@check("inspect_service insert_defaults")
def _():
    name, r = make(simple())
    s = api.inspect_service(r, insert_defaults=True)["Spec"]
    assert s["UpdateConfig"]["Parallelism"] == 1 and s["UpdateConfig"]["FailureAction"] == "pause", s.get("UpdateConfig")
    assert s["UpdateConfig"]["Order"] == "stop-first" and s["RollbackConfig"]["Order"] == "stop-first", s
    assert s["TaskTemplate"]["RestartPolicy"]["Condition"] == "any", s["TaskTemplate"]
    assert s["TaskTemplate"]["ContainerSpec"]["StopGracePeriod"] == 10000000000, s["TaskTemplate"]["ContainerSpec"]
    plain = api.inspect_service(r)["Spec"]
    assert "UpdateConfig" not in plain or plain["UpdateConfig"] is None or "Order" not in plain["UpdateConfig"], plain


@check("service_logs and tasks")
def _():
    name, r = make(simple(["echo", "hello"]))
    wait_for(lambda: any(t["Status"]["State"] == "complete" for t in api.tasks(filters={"service": name})), "a complete task")
    t = api.tasks(filters={"service": name})[0]
    assert t["ServiceID"] == r["ID"] and t["Slot"] >= 1 and t["Spec"]["ContainerSpec"]["Image"] == "busybox", t

    def line():
        for x in api.service_logs(r["ID"], stdout=True, is_tty=False):
            return x
        return None

    got = wait_for(line, "a log line")
    assert b"hello\n" in got, got
    tl = b"".join(api.service_logs(r["ID"], stdout=True, timestamps=True, details=True))
    assert b"hello" in tl and b"com.docker.swarm.node.id=" in tl, tl


@check("log driver, volume mount, mount with driver options")
def _():
    _n, r = make(types.TaskTemplate(types.ContainerSpec("busybox", ["true"]), log_driver=types.DriverConfig("none")))
    assert spec_of(r)["TaskTemplate"]["LogDriver"]["Name"] == "none"
    vol = "dockerpyvol_1"
    _n, r = make(simple(["ls"], mounts=[types.Mount(target="/test", source=vol)]))
    m = spec_of(r)["TaskTemplate"]["ContainerSpec"]["Mounts"][0]
    assert m["Target"] == "/test" and m["Source"] == vol and m["Type"] == "volume", m
    dc = types.DriverConfig("local", {"type": "tmpfs", "device": "tmpfs"})
    _n, r = make(simple(["ls"], mounts=[types.Mount(target="/test", source=vol, driver_config=dc, labels={"x": "y"})]))
    m = spec_of(r)["TaskTemplate"]["ContainerSpec"]["Mounts"][0]
    assert m["VolumeOptions"]["DriverConfig"] == dc, m
    assert m["VolumeOptions"]["Labels"] == {"x": "y"}, m


@check("resources, generic resources")
def _():
    res = types.Resources(cpu_limit=4000000, mem_limit=3 * 1024 * 1024 * 1024, cpu_reservation=3500000, mem_reservation=2 * 1024 * 1024 * 1024)
    _n, r = make(types.TaskTemplate(types.ContainerSpec("busybox", ["true"]), resources=res))
    got = spec_of(r)["TaskTemplate"]["Resources"]
    assert got["Limits"] == res["Limits"] and got["Reservations"] == res["Reservations"], got
    res = types.Resources(generic_resources={"gpu": 2, "ssd": "sda"})
    _n, r = make(types.TaskTemplate(types.ContainerSpec("busybox", ["true"]), resources=res))
    got = spec_of(r)["TaskTemplate"]["Resources"]["Reservations"]["GenericResources"]
    assert sorted(got, key=json.dumps) == sorted(res["Reservations"]["GenericResources"], key=json.dumps), got


@check("update and rollback config, restart policy")
def _():
    uc = types.UpdateConfig(parallelism=10, delay=5, failure_action="pause", monitor=300000000, max_failure_ratio=0.4, order="start-first")
    rc = types.RollbackConfig(parallelism=3, delay=2, failure_action="continue", monitor=100000000, max_failure_ratio=0.2, order="stop-first")
    _n, r = make(simple(), update_config=uc, rollback_config=rc)
    s = spec_of(r)
    for k in ("Parallelism", "Delay", "FailureAction", "Monitor", "MaxFailureRatio", "Order"):
        assert s["UpdateConfig"][k] == uc[k], (k, s["UpdateConfig"])
        assert s["RollbackConfig"][k] == rc[k], (k, s["RollbackConfig"])
    policy = types.RestartPolicy(types.RestartPolicy.condition_types.ANY, delay=5, max_attempts=5, window=0)
    _n, r = make(types.TaskTemplate(types.ContainerSpec("busybox", ["true"]), restart_policy=policy))
    assert spec_of(r)["TaskTemplate"]["RestartPolicy"] == policy, spec_of(r)["TaskTemplate"]["RestartPolicy"]


@check("placement: constraints, preferences, platforms, max replicas")
def _():
    node_id = api.nodes()[0]["ID"]
    _n, r = make(types.TaskTemplate(types.ContainerSpec("busybox", ["true"]), placement=["node.id==%s" % node_id]))
    assert spec_of(r)["TaskTemplate"]["Placement"] == {"Constraints": ["node.id==%s" % node_id]}
    pl = types.Placement(preferences=[("spread", "node.labels.rack")], platforms=[("x86_64", "linux")], maxreplicas=1)
    _n, r = make(types.TaskTemplate(types.ContainerSpec("busybox", ["true"]), placement=pl))
    got = spec_of(r)["TaskTemplate"]["Placement"]
    assert got["Preferences"] == [{"Spread": {"SpreadDescriptor": "node.labels.rack"}}], got
    assert got["Platforms"] == [{"Architecture": "x86_64", "OS": "linux"}], got
    assert got["MaxReplicas"] == 1, got


@check("endpoint spec: published ports, host mode")
def _():
    es = types.EndpointSpec(ports={12357: (1990, "udp"), 12562: (678,), 53243: 8080})
    _n, r = make(simple(), endpoint_spec=es)
    ports = spec_of(r)["EndpointSpec"]["Ports"]
    want = {12357: (1990, "udp"), 12562: (678, "tcp"), 53243: (8080, "tcp")}
    assert len(ports) == 3 and {p["PublishedPort"]: (p["TargetPort"], p["Protocol"]) for p in ports} == want, ports
    es = types.EndpointSpec(ports={12358: (1991, "tcp", "host")})
    _n, r = make(simple(), endpoint_spec=es)
    p = spec_of(r)["EndpointSpec"]["Ports"][0]
    assert p["PublishMode"] == "host" and p["TargetPort"] == 1991, p


@check("container spec: env, workdir, hostname, user, groups, tty, stop signal, read only, init, isolation")
def _():
    cs = types.ContainerSpec(
        "busybox", ["true"], env={"DOCKER_PY_TEST": 1}, workdir="/tmp", hostname="foobar", user="nobody", groups=["shrinemaidens", "youkais"],
        tty=True, stop_signal="SIGINT", read_only=True, init=True, isolation="default", labels={"l": "v"}, stop_grace_period=5000000000,
    )
    _n, r = make(types.TaskTemplate(cs))
    got = spec_of(r)["TaskTemplate"]["ContainerSpec"]
    want = {"Env": ["DOCKER_PY_TEST=1"], "Dir": "/tmp", "Hostname": "foobar", "User": "nobody", "Groups": ["shrinemaidens", "youkais"], "TTY": True,
            "StopSignal": "SIGINT", "ReadOnly": True, "Init": True, "Isolation": "default", "Labels": {"l": "v"}, "StopGracePeriod": 5000000000}
    for k, v in want.items():
        assert got.get(k) == v, (k, got.get(k))


@check("container spec: hosts, dns config, healthcheck, privileges")
def _():
    dns = types.DNSConfig(nameservers=["8.8.8.8", "8.8.4.4"], search=["local"], options=["debug"])
    hc = types.Healthcheck(test=["CMD-SHELL", "true"], interval=1000000000, timeout=2000000000, retries=3, start_period=3000000000)
    priv = types.Privileges(selinux_disable=True)
    assert priv["SELinuxContext"]["Disable"] is True
    cs = types.ContainerSpec("busybox", ["true"], hosts={"foobar": "127.0.0.1", "baz": "8.8.8.8"}, dns_config=dns, healthcheck=hc, privileges=priv)
    _n, r = make(types.TaskTemplate(cs))
    got = spec_of(r)["TaskTemplate"]["ContainerSpec"]
    assert "8.8.8.8 baz" in got["Hosts"] and "127.0.0.1 foobar" in got["Hosts"], got.get("Hosts")
    assert got["DNSConfig"] == dns, got.get("DNSConfig")
    assert got["Healthcheck"] == hc, got.get("Healthcheck")
    assert got["Privileges"]["SELinuxContext"]["Disable"] is True, got.get("Privileges")


@check("container spec: cap_add, cap_drop, sysctls")
def _():
    cs = types.ContainerSpec("busybox", ["true"], cap_add=["CAP_SYSLOG"], cap_drop=["CAP_NET_RAW"])
    # (docker-py 6.1 and later take sysctls=; Debian's 5.0 does not: the field it would set)
    cs["Sysctls"] = {"net.ipv4.tcp_timestamps": "0"}
    _n, r = make(types.TaskTemplate(cs))
    got = spec_of(r)["TaskTemplate"]["ContainerSpec"]
    assert got["CapabilityAdd"] == ["CAP_SYSLOG"] and got["CapabilityDrop"] == ["CAP_NET_RAW"], got
    assert got["Sysctls"] == {"net.ipv4.tcp_timestamps": "0"}, got.get("Sysctls")


@check("modes: global, replicated")
def _():
    _n, r = make(simple(["echo", "hello"]), mode="global")
    assert "Global" in spec_of(r)["Mode"]
    _n, r = make(simple(["echo", "hello"]), mode=types.ServiceMode("replicated", 5))
    assert spec_of(r)["Mode"]["Replicated"] == {"Replicas": 5}


@check("secret and config delivered to the task")
def _():
    sref = types.SecretReference(secret_id, "favorite_touhou")
    cref = types.ConfigReference(config_id, "favorite_character")
    name, r = make(types.TaskTemplate(types.ContainerSpec("busybox", ["sleep", "999"], secrets=[sref], configs=[cref])))
    cs = spec_of(r)["TaskTemplate"]["ContainerSpec"]
    assert cs["Secrets"][0] == sref, cs["Secrets"]
    assert cs["Configs"][0] == cref, cs["Configs"]

    def container():
        c = api.containers(filters={"name": [name]}, quiet=True)
        return c[0] if c else None

    c = wait_for(container, "the service's container")
    e = api.exec_create(c, "cat /run/secrets/favorite_touhou")
    assert api.exec_start(e) == b"phantasmagoria of flower view"
    e = api.exec_create(c, "cat /favorite_character")
    assert api.exec_start(e) == b"sakuya izayoi"


@check("config templating (golang): shown in inspect, expanded for the task")
def _():
    cid = api.create_config("templated", b"{{ .Service.Name }} {{.Task.Slot}}", templating={"name": "golang"})["ID"]
    created["configs"].append(cid)
    assert api.inspect_config(cid)["Spec"]["Templating"] == {"Name": "golang"}, api.inspect_config(cid)["Spec"]
    cref = types.ConfigReference(cid, "templated")
    name, r = make(types.TaskTemplate(types.ContainerSpec("busybox", ["sleep", "999"], configs=[cref])))

    def container():
        c = api.containers(filters={"name": [name]}, quiet=True)
        return c[0] if c else None

    c = wait_for(container, "the service's container")
    assert api.exec_start(api.exec_create(c, "cat /templated")) == (name + " 1").encode()


@check("update_service: force update, new version")
def _():
    name, r = make(simple(["echo", "hello"]))
    s = api.inspect_service(r)
    assert s["Spec"]["TaskTemplate"]["ForceUpdate"] == 0, s["Spec"]["TaskTemplate"]
    v = s["Version"]["Index"]
    api.update_service(name, v, simple(["echo", "hello"]).__class__(types.ContainerSpec("busybox", ["echo", "hello"]), force_update=10), name=name)
    s2 = api.inspect_service(r)
    assert s2["Version"]["Index"] > v and s2["Spec"]["TaskTemplate"]["ForceUpdate"] == 10
    assert s2["PreviousSpec"]["TaskTemplate"]["ForceUpdate"] == 0, s2.get("PreviousSpec")


@check("update_service fetch_current_spec: the rest of the spec kept")
def _():
    uc = types.UpdateConfig(parallelism=2, delay=3)
    es = types.EndpointSpec(ports={12600: 80})
    name, r = make(simple(["sleep", "999"]), update_config=uc, endpoint_spec=es, labels={"a": "1"})
    s = api.inspect_service(r)
    api.update_service(r["ID"], s["Version"]["Index"], labels={"force": "update"}, fetch_current_spec=True)
    s2 = api.inspect_service(r)
    assert s2["Spec"]["Name"] == name and s2["Spec"]["Labels"] == {"force": "update"}, s2["Spec"]
    assert s2["Spec"]["UpdateConfig"]["Parallelism"] == 2 and s2["Spec"]["UpdateConfig"]["Delay"] == 3, s2["Spec"]["UpdateConfig"]
    assert s2["Spec"]["EndpointSpec"]["Ports"][0]["PublishedPort"] == 12600, s2["Spec"]["EndpointSpec"]
    assert s2["Spec"]["TaskTemplate"]["ContainerSpec"]["Command"] == ["sleep", "999"], s2["Spec"]["TaskTemplate"]
    warn = api.update_service(r["ID"], s2["Version"]["Index"], mode=types.ServiceMode("replicated", 2), fetch_current_spec=True)
    assert isinstance(warn, dict), warn
    s3 = api.inspect_service(r)
    assert s3["Spec"]["Mode"]["Replicated"]["Replicas"] == 2 and s3["Spec"]["Labels"] == {"force": "update"}
    e = raises(docker.errors.APIError, api.update_service, r["ID"], s["Version"]["Index"], labels={"x": "y"})
    assert e.response.status_code in (400, 500), e.response.status_code


@check("models: services create, get, list, tasks, scale, update, force_update, remove")
def _():
    svc = client.services.create("busybox", command="sleep 300", name="dockerpy_model", labels={"m": "1"}, container_labels={"c": "2"}, env=["A=1"])
    created["services"].append(svc.id)
    assert svc.name == "dockerpy_model"
    assert client.services.get(svc.id).attrs["Spec"]["Labels"] == {"m": "1"}
    assert svc.id in [x.id for x in client.services.list(filters={"name": "dockerpy_model"})]
    cs = svc.attrs["Spec"]["TaskTemplate"]["ContainerSpec"]
    assert cs["Labels"] == {"c": "2"} and cs["Env"] == ["A=1"] and cs["Command"] == ["sleep", "300"], cs
    wait_for(lambda: any(t["Status"]["State"] == "running" for t in svc.tasks()), "a running task")
    assert svc.tasks(filters={"desired-state": "running"})[0]["DesiredState"] == "running"
    assert svc.scale(2)
    svc.reload()
    assert svc.attrs["Spec"]["Mode"]["Replicated"]["Replicas"] == 2
    wait_for(lambda: len([t for t in svc.tasks() if t["Status"]["State"] == "running"]) == 2, "2 running tasks")
    svc.update(labels={"m": "2"})
    svc.reload()
    assert svc.attrs["Spec"]["Labels"] == {"m": "2"} and svc.attrs["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"] == "busybox"
    assert svc.force_update()
    svc.reload()
    assert svc.attrs["Spec"]["TaskTemplate"]["ForceUpdate"] == 1, svc.attrs["Spec"]["TaskTemplate"]
    assert svc.remove()
    raises(docker.errors.NotFound, client.services.get, svc.id)


@check("models: update keeps service and container labels, labels={} clears, command, force_update version, global scale refused")
def _():
    svc = client.services.create("busybox", command="sleep 300", name="dockerpy_model2", labels={"service.label": "S"}, container_labels={"container.label": "C"})
    created["services"].append(svc.id)
    v0 = svc.version
    svc.update(name=svc.name, command="sleep 600", force_update=10)
    svc.reload()
    cs = svc.attrs["Spec"]["TaskTemplate"]["ContainerSpec"]
    assert cs["Command"] == ["sleep", "600"] and cs["Labels"] == {"container.label": "C"}, cs
    assert svc.attrs["Spec"]["Labels"] == {"service.label": "S"}, svc.attrs["Spec"]
    assert svc.version > v0 and svc.attrs["Spec"]["TaskTemplate"]["ForceUpdate"] == 10
    svc.update(name=svc.name, labels={}, command="sleep 601")
    svc.reload()
    assert not svc.attrs["Spec"].get("Labels"), svc.attrs["Spec"]
    g = client.services.create("busybox", command="sleep 300", name="dockerpy_global", mode=types.ServiceMode("global"))
    created["services"].append(g.id)
    wait_for(lambda: len(g.tasks()) == 1, "the global service's task")
    raises(docker.errors.InvalidArgument, g.scale, 2)
    g.reload()
    assert g.attrs["Spec"]["TaskTemplate"]["ContainerSpec"]["Command"] == ["sleep", "300"] and "Global" in g.attrs["Spec"]["Mode"]


# --- the end --------------------------------------------------------------------------------
for sid in created["services"]:
    try:
        api.remove_service(sid)
    except docker.errors.APIError:
        pass
for sid in created["secrets"]:
    try:
        api.remove_secret(sid)
    except docker.errors.APIError:
        pass
for cid in created["configs"]:
    try:
        api.remove_config(cid)
    except docker.errors.APIError:
        pass


@check("leave_swarm: refused for the last manager, then forced; inspect after it")
def _():
    e = raises(docker.errors.APIError, api.leave_swarm)
    assert e.response.status_code == 503, e.response.status_code
    assert api.leave_swarm(force=True)
    e = raises(docker.errors.APIError, api.inspect_swarm)
    assert e.response.status_code == 503, e.response.status_code
    assert api.leave_swarm(force=True)


@check("init_swarm: pool defaults, CA config, data path port; autolock, unlock key and its rotation")
def _():
    spec = api.create_swarm_spec(node_cert_expiry=7776000000000000, ca_force_rotate=6000000000000)
    # (data_path_port= is docker-py 6's; Debian's 5.0 sends the default)
    assert api.init_swarm(advertise_addr=ip, listen_addr=ip + ":2377", swarm_spec=spec)
    info = api.inspect_swarm()
    assert set(info["DefaultAddrPool"]) == {"10.0.0.0/8"} and info["SubnetSize"] == 24 and info["DataPathPort"] == 4789, info
    assert info["Spec"]["CAConfig"]["NodeCertExpiry"] == spec["CAConfig"]["NodeCertExpiry"]
    assert info["Spec"]["CAConfig"]["ForceRotate"] == spec["CAConfig"]["ForceRotate"]
    assert api.get_unlock_key() == {"UnlockKey": ""}
    # autolock turned on by an update: swarmkit's SWMKEY-1- key; an unlocked manager's unlock is moby's notLockedError (409)
    assert api.update_swarm(version=info["Version"]["Index"], swarm_spec=api.create_swarm_spec(autolock_managers=True))
    key = api.get_unlock_key()["UnlockKey"]
    assert key.startswith("SWMKEY-1-"), key
    e = raises(docker.errors.APIError, api.unlock_swarm, key)
    assert e.response.status_code == 409 and "swarm is not locked" in e.explanation, (e.response.status_code, e.explanation)
    assert api.leave_swarm(force=True)
    # init with autolock; the key rotated by update_swarm(rotate_manager_unlock_key=True)
    assert api.init_swarm(advertise_addr=ip, listen_addr=ip + ":2377", swarm_spec=api.create_swarm_spec(autolock_managers=True))
    info = api.inspect_swarm()
    assert info["Spec"]["EncryptionConfig"]["AutoLockManagers"] is True, info["Spec"]
    key = api.get_unlock_key()["UnlockKey"]
    assert key.startswith("SWMKEY-1-"), key
    assert api.update_swarm(version=info["Version"]["Index"], swarm_spec=info["Spec"], rotate_manager_unlock_key=True)
    rotated = api.get_unlock_key()["UnlockKey"]
    assert rotated.startswith("SWMKEY-1-") and rotated != key, (key, rotated)
    info = api.inspect_swarm()
    assert api.update_swarm(version=info["Version"]["Index"], swarm_spec=api.create_swarm_spec(autolock_managers=False))
    assert api.get_unlock_key() == {"UnlockKey": ""}
    assert api.leave_swarm(force=True)
    raises(docker.errors.APIError, api.inspect_swarm)


print(json.dumps({"failed": failed, "passed": passed}))
