#!/usr/bin/env python3
"""Equal timing (issue 5), measured over HTTP on 127.0.0.1 with one keep-alive connection.

  timing.py BASE_URL API_KEY KNOWN_USERS_FILE SAMPLES [MAIL_USERS_FILE]

Pairs, each interleaved sample by sample in a random order:
  - login with an unknown user vs login with a known user and a wrong password (both 401);
  - reset-code request (POST /v1/password-resets) for an unknown vs a known user (404 / 201).

Throttling stays ON (the production path): every attempt carries a fresh client IP
(198.18.x.y, one per sample, so the per-IP counter never fills), unknown logins are fresh
random names, and wrong-password samples rotate over the known users (each well under
its free failures). Prints one JSON line per pair: medians, p90s, and the gap in percent
of the smaller median.

Each reset-code sample uses its login once, known or unknown: a prober probing names meets
a fresh `code:reset:` counter either way, so both kinds insert a new counter row (rotating
known users over a few names would time counter updates against unknown inserts). So
KNOWN_USERS_FILE needs SAMPLES + 10 registered users (the 10 are the warm-up's).

With MAIL_USERS_FILE (a server with HALLPASS_SMTP_URL set; SAMPLES + 10 more users, each
with an email, one per sample), a third pair: reset by mail (POST /v1/password-resets
{login, send_email: true}) for an unknown vs a known login, both 202; the known one also
queues the mail in its transaction. TIMING_ONLY=SUBSTRING runs only the matching pairs.
"""
import http.client, json, random, statistics, sys, time, urllib.parse, uuid

base, key, users_file, samples = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
mail_file = sys.argv[5] if len(sys.argv) > 5 else None
only = __import__("os").environ.get("TIMING_ONLY")  # run only the pairs whose name contains this
known = [l.strip() for l in open(users_file) if l.strip()]
if len(known) < samples + 10:
    sys.exit("timing.py: %d known users, need SAMPLES + 10 = %d (one per reset sample)" % (len(known), samples + 10))
u = urllib.parse.urlparse(base)
conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
headers = {"Authorization": "Bearer " + key, "Content-Type": "application/json"}
ip_counter = [0]

def fresh_ip():
    ip_counter[0] += 1
    n = ip_counter[0]
    return "198.18.%d.%d" % ((n // 250) % 250, n % 250 + 1)

def post(path, body):
    data = json.dumps(body)
    t = time.perf_counter()
    conn.request("POST", path, body=data, headers=headers)
    r = conn.getresponse()
    r.read()
    return time.perf_counter() - t, r.status

def pair(name, a_name, a, a_status, b_name, b, b_status):
    if only and only not in name:
        return
    for k in range(10):  # warm-up, on indices the samples do not reach first
        a(samples + k); b(samples + k)
    ta, tb, bad, seen = [], [], 0, {}
    order = [0] * samples + [1] * samples
    random.shuffle(order)
    ia = ib = 0
    for which in order:
        if which == 0:
            dt, st = a(ia); ia += 1
            (ta.append(dt) if st == a_status else None); bad += st != a_status
            seen[st] = seen.get(st, 0) + 1
        else:
            dt, st = b(ib); ib += 1
            (tb.append(dt) if st == b_status else None); bad += st != b_status
            seen[st] = seen.get(st, 0) + 1
    ma, mb = statistics.median(ta), statistics.median(tb)
    q = lambda v: statistics.quantiles(v, n=10)[-1]
    print(json.dumps({
        "name": name, "samples_each": samples, "unexpected_status": bad, "statuses": {str(k): v for k, v in sorted(seen.items())},
        a_name + "_median_ms": round(ma * 1e3, 3), b_name + "_median_ms": round(mb * 1e3, 3),
        a_name + "_p90_ms": round(q(ta) * 1e3, 3), b_name + "_p90_ms": round(q(tb) * 1e3, 3),
        "gap_percent": round(abs(ma - mb) / min(ma, mb) * 100, 2),
    }), flush=True)

PW = "Tr0ub4dor&3-horse-staple-wrong"
pair("login_unknown_vs_wrong_password",
     "unknown_user", lambda i: post("/v1/sessions", {"login": "nobody-" + uuid.uuid4().hex[:12], "password": PW,
                                                      "client": {"ip": fresh_ip()}}), 401,
     "wrong_password", lambda i: post("/v1/sessions", {"login": known[i % len(known)], "password": PW,
                                                        "client": {"ip": fresh_ip()}}), 401)
pair("reset_code_unknown_vs_known",
     "unknown_user", lambda i: post("/v1/password-resets", {"login": "nobody-" + uuid.uuid4().hex[:12]}), 404,
     "known_user", lambda i: post("/v1/password-resets", {"login": known[i]}), 201)  # each user once

if mail_file:
    mailed = [l.strip() for l in open(mail_file) if l.strip()]
    if len(mailed) < samples + 10:
        sys.exit("timing.py: %d mail users, need SAMPLES + 10 = %d" % (len(mailed), samples + 10))
    pair("reset_by_mail_unknown_vs_known",
         "unknown_user", lambda i: post("/v1/password-resets", {"login": "nobody-" + uuid.uuid4().hex[:12],
                                                                 "send_email": True}), 202,
         "known_user", lambda i: post("/v1/password-resets", {"login": mailed[i], "send_email": True}), 202)
