#!/usr/bin/env python3
"""Client-side helpers of bench/run.sh for the side-by-side figures (127.0.0.1 only).

  peers.py ba-cookie BASE EMAIL PASSWORD [--signup]
      Better Auth: (sign up, then) sign in with email and password; prints the Cookie
      header its answer sets (session token, and the cookie cache's session data when on).
  peers.py ba-signup-many BASE PREFIX N PASSWORD
      Better Auth: signs up N users PREFIX0@bench.invalid..; prints their emails.
  peers.py stale-ba BASE EMAIL PASSWORD MAX_S
      Better Auth, cookie cache on: client A signs in; client B holds a copy of A's cookies
      (another tab or device of the same browser profile, or a copied cookie); A signs out
      (POST /api/auth/sign-out); B asks GET /api/auth/get-session every 100 ms, keeping the
      cookies answers set as a browser does, until an answer says "no session" or MAX_S
      pass. One JSON line.
  peers.py stale-hallpass BASE KEY LOGIN PASSWORD MAX_S
      hallpass: log in; check the token twice (so the server has it cached); DELETE
      /v1/session; then GET /v1/session every 100 ms until a 401 or MAX_S. One JSON line.

The staleness lines: `valid_after_signout` answers still said the session was valid after
the sign-out's answer came back, the last of them `last_valid_ms` after it (null: none),
the first refusal `first_refused_ms` after it (null: none within MAX_S).
"""
import http.client, json, sys, time


class Client:
    """One keep-alive HTTP/1.1 connection with a minimal cookie jar."""

    def __init__(self, base):
        host, port = base.split("://", 1)[1].rstrip("/").split(":")
        self.base, self.conn, self.jar = base, http.client.HTTPConnection(host, int(port), timeout=30), {}

    def cookie(self):
        return "; ".join(f"{k}={v}" for k, v in self.jar.items())

    def req(self, method, path, body=None, headers=None):
        h = dict(headers or {})
        if self.jar:
            h["Cookie"] = self.cookie()
        if body is not None:
            body = json.dumps(body)
            h["Content-Type"] = "application/json"
        if method != "GET":
            h["Origin"] = self.base  # what a browser sends with a same-origin POST
        self.conn.request(method, path, body=body, headers=h)
        r = self.conn.getresponse()
        data = r.read()
        for k, v in r.getheaders():
            if k.lower() == "set-cookie":
                name, _, rest = v.partition("=")
                value = rest.split(";", 1)[0]
                attrs = rest.lower()
                if "max-age=0" in attrs or value == "":
                    self.jar.pop(name, None)
                else:
                    self.jar[name] = value
        try:
            parsed = json.loads(data) if data else None
        except ValueError:
            parsed = None
        return r.status, parsed


def ba_signin(base, email, password, signup=False):
    c = Client(base)
    if signup:
        s, b = c.req("POST", "/api/auth/sign-up/email", {"email": email, "password": password, "name": email.split("@")[0]})
        if s != 200:
            sys.exit(f"sign-up: {s} {b}")
        c.jar.clear()
    s, b = c.req("POST", "/api/auth/sign-in/email", {"email": email, "password": password})
    if s != 200:
        sys.exit(f"sign-in: {s} {b}")
    return c


def ba_valid(status, body):
    return status == 200 and isinstance(body, dict) and bool(body.get("session"))


def poll(check, t_out, max_s):
    """Asks check() every 100 ms from t_out on; -> the staleness figures."""
    valid = 0
    last_valid = first_refused = None
    polls = 0
    deadline = t_out + max_s
    nxt = time.monotonic()
    while time.monotonic() < deadline:
        polls += 1
        ok = check()
        at = time.monotonic()
        if ok:
            valid += 1
            last_valid = (at - t_out) * 1000
        else:
            first_refused = (at - t_out) * 1000
            break
        nxt += 0.1
        time.sleep(max(0.0, nxt - time.monotonic()))
    return {"valid_after_signout": valid, "last_valid_ms": None if last_valid is None else round(last_valid, 1),
            "first_refused_ms": None if first_refused is None else round(first_refused, 1),
            "polls": polls, "poll_interval_ms": 100, "max_s": max_s}


def stale_ba(base, email, password, max_s):
    a = ba_signin(base, email, password)
    if "better-auth.session_data" not in a.jar:
        sys.exit("stale-ba: the answer set no cookie-cache cookie (is session.cookieCache on?)")
    b = Client(base)
    b.jar = dict(a.jar)
    s, body = b.req("GET", "/api/auth/get-session")
    if not ba_valid(s, body):
        sys.exit(f"stale-ba: B's first check failed: {s} {body}")
    t_in = time.monotonic()
    s, body = a.req("POST", "/api/auth/sign-out", {})
    t_out = time.monotonic()
    if s != 200:
        sys.exit(f"stale-ba: sign-out: {s} {body}")
    # The session is gone from the database: asked without the cookie cache, it is refused.
    d = Client(base)
    d.jar = dict(b.jar)
    s, body = d.req("GET", "/api/auth/get-session?disableCookieCache=true")
    out = {"signed_out_in_database": not ba_valid(s, body), "signout_after_signin_ms": round((t_out - t_in) * 1000, 1)}
    out.update(poll(lambda: ba_valid(*b.req("GET", "/api/auth/get-session")), t_out, max_s))
    return out


def stale_hallpass(base, key, login, password, max_s):
    c = Client(base)
    auth = {"Authorization": f"Bearer {key}"}
    s, body = c.req("POST", "/v1/sessions", {"login": login, "password": password}, auth)
    if s not in (200, 201):
        sys.exit(f"stale-hallpass: login: {s} {body}")
    h = dict(auth, **{"X-Session-Token": body["token"]})
    for _ in range(2):
        s, body = c.req("GET", "/v1/session", None, h)
        if s != 200:
            sys.exit(f"stale-hallpass: check: {s} {body}")
    b = Client(base)  # the other client holding the same token
    if b.req("GET", "/v1/session", None, h)[0] != 200:
        sys.exit("stale-hallpass: the other client's first check failed")
    s, _ = c.req("DELETE", "/v1/session", None, h)
    t_out = time.monotonic()
    if s != 204:
        sys.exit(f"stale-hallpass: DELETE /v1/session: {s}")
    return dict({"signed_out_in_database": True}, **poll(lambda: b.req("GET", "/v1/session", None, h)[0] == 200, t_out, max_s))


if __name__ == "__main__":
    a = sys.argv[1:]
    if not a:
        sys.exit(__doc__)
    if a[0] == "ba-cookie":
        print(ba_signin(a[1], a[2], a[3], "--signup" in a).cookie())
    elif a[0] == "ba-signup-many":
        c = Client(a[1])
        for i in range(int(a[3])):
            email = f"{a[2]}{i}@bench.invalid"
            st, b = c.req("POST", "/api/auth/sign-up/email", {"email": email, "password": a[4], "name": f"{a[2]}{i}"})
            if st != 200:
                sys.exit(f"sign-up {email}: {st} {b}")
            c.jar.clear()
            print(email)
    elif a[0] == "stale-ba":
        print(json.dumps(stale_ba(a[1], a[2], a[3], float(a[4]))))
    elif a[0] == "stale-hallpass":
        print(json.dumps(stale_hallpass(a[1], a[2], a[3], a[4], float(a[5]))))
    else:
        sys.exit(__doc__)
