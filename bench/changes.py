#!/usr/bin/env python3
"""Change-stream latency (issue 20): how long after `DELETE /v1/session` answered on one
server process a client of *another* process reads `session.ended` on `GET /v1/changes`.

  changes.py BASE_A BASE_B API_KEY SAMPLES

A keeps one stream open (a thread reads it and stamps each event with `perf_counter` on
arrival); B is where each session is ended. Each sample: log in on B, end the session on
B, stamp when B answered, then wait (at most 5 s) for A's stream to name that session.
Prints one JSON line: samples, p50, p90, p99 and max in milliseconds (from B's answer to
A's event), and how many never arrived. Loopback only; bounded by SAMPLES.

Needs a database both processes share with a channel that names sessions (PostgreSQL,
MariaDB); on SQLite another process's write reaches A only as `reset`.
"""
import http.client, json, queue, statistics, sys, threading, time, urllib.parse

base_a, base_b, key, samples = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
headers = {"Authorization": "Bearer " + key, "Content-Type": "application/json"}
arrived = queue.Queue()


def stream(base):
    u = urllib.parse.urlparse(base)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
    conn.request("GET", "/v1/changes", headers={**headers, "Accept": "text/event-stream"})
    r = conn.getresponse()
    assert r.status == 200, r.status
    event, data = None, ""
    while True:
        line = r.fp.readline()
        if not line:
            return
        line = line.decode().rstrip("\n")
        if line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data += line[5:].strip()
        elif line == "":
            if event == "session.ended":
                arrived.put((time.perf_counter(), json.loads(data)["session_id"]))
            event, data = None, ""


def client(base):
    u = urllib.parse.urlparse(base)
    return http.client.HTTPConnection(u.hostname, u.port, timeout=30)


def call(conn, method, path, body=None, token=None):
    h = dict(headers)
    if token:
        h["X-Session-Token"] = token
    conn.request(method, path, body=None if body is None else json.dumps(body), headers=h)
    r = conn.getresponse()
    text = r.read()
    return r.status, (json.loads(text) if text else None)


threading.Thread(target=stream, args=(base_a,), daemon=True).start()
b = client(base_b)
password = "quilted marsupial drumbeat 42"
name = "latency%d" % int(time.time() * 1000)
status, _ = call(b, "POST", "/v1/users", {"username": name, "password": password})
assert status == 201, status
time.sleep(1.0)  # the stream is open and A's channel settled

lat, missing = [], 0
for i in range(samples):
    status, login = call(b, "POST", "/v1/sessions", {"username": name, "password": password})
    assert status == 201, (status, login)
    sid, token = login["session"]["id"], login["token"]
    status, _ = call(b, "DELETE", "/v1/session", token=token)
    answered = time.perf_counter()
    assert status == 204, status
    deadline = answered + 5
    while True:
        try:
            at, got = arrived.get(timeout=max(0.0, deadline - time.perf_counter()))
        except queue.Empty:
            missing += 1
            break
        if got == sid:
            lat.append(max(0.0, at - answered) * 1000)
            break

lat.sort()
pct = lambda p: round(lat[min(len(lat) - 1, int(p / 100 * len(lat)))], 2) if lat else None
print(json.dumps({
    "samples": samples,
    "arrived": len(lat),
    "missing": missing,
    "p50_ms": pct(50), "p90_ms": pct(90), "p99_ms": pct(99),
    "max_ms": round(lat[-1], 2) if lat else None,
    "mean_ms": round(statistics.mean(lat), 2) if lat else None,
}))
