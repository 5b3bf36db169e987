#!/usr/bin/env python3
"""Helpers of bench/run.sh.

  report.py wrk FILE          wrk --latency output -> one JSON object
  report.py wrkmany FILE...   slices of one interleaved wrk measurement -> one JSON object
  report.py argon2many FILE...  slices of argon2-rate (or better-auth/scrypt-rate.mjs) -> one JSON object
  report.py write RESDIR OUT  the figures of one run (RESDIR/*.json[l]) -> bench/RESULTS.md
"""
import json, os, re, sys

UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def ms(text):
    m = re.match(r"([\d.]+)(us|ms|s|m)$", text.strip())
    return float(m.group(1)) * UNITS[m.group(2)] if m else None


def parse_wrk(path):
    out = {"rps": 0.0, "requests": 0, "non2xx": 0, "socket_errors": 0}
    for line in open(path):
        s = line.strip()
        if s.startswith("Requests/sec:"):
            out["rps"] = float(s.split()[1])
        elif re.match(r"^\d+ requests in", s):
            out["requests"] = int(s.split()[0])
        elif s.startswith("Non-2xx or 3xx responses:"):
            out["non2xx"] = int(s.split(":")[1])
        elif s.startswith("Socket errors:"):
            out["socket_errors"] = sum(int(x) for x in re.findall(r"\d+", s))
        else:
            m = re.match(r"^(50|75|90|99)%\s+(\S+)$", s)
            if m:
                out["p%s_ms" % m.group(1)] = ms(m.group(2))
    return out


def median(v):
    v = sorted(x for x in v if x is not None)
    return v[len(v) // 2] if v else None


def combine_wrk(paths):
    """Slices of one interleaved measurement: mean rate, median percentiles, summed errors."""
    parts = [parse_wrk(p) for p in paths]
    out = {"rps": sum(p["rps"] for p in parts) / len(parts), "slices": len(parts),
           "slice_rps": [round(p["rps"], 1) for p in parts]}
    for k in ("requests", "non2xx", "socket_errors"):  # summed over slices
        out[k] = sum(p[k] for p in parts)
    for k in ("p50_ms", "p75_ms", "p90_ms", "p99_ms"):
        out[k] = median(p.get(k) for p in parts)
    return out


def combine_argon2(paths):
    parts = [json.loads(open(p).read()) for p in paths]
    out = dict(parts[0])
    out["verifications"] = sum(p["verifications"] for p in parts)
    out["seconds"] = sum(p["seconds"] for p in parts)
    out["per_second"] = out["verifications"] / out["seconds"]
    if all(p.get("cpu_seconds") for p in parts):
        out["cpu_seconds"] = sum(p["cpu_seconds"] for p in parts)
        # argon2-rate's CPU time includes the one hash it makes first; scrypt-rate's does not.
        setup = sum(0 if p.get("setup_in_cpu") is False else 1 for p in parts)
        out["per_cpu_second"] = (out["verifications"] + setup) / out["cpu_seconds"]
    out["slices"] = len(parts)
    out["slice_per_second"] = [round(p["per_second"], 1) for p in parts]
    return out


def load(res, name):
    p = os.path.join(res, name)
    if not os.path.exists(p):
        return None
    if name.endswith(".jsonl"):
        return {o["name"]: o for o in (json.loads(l) for l in open(p) if l.strip())}
    return json.load(open(p))


def fmt(x, digits=0):
    if x is None:
        return "—"
    if isinstance(x, str):
        return x
    return f"{x:,.{digits}f}"


KEEP_MARKER = "<!-- sections below are measured by other scripts; report.py keeps them -->"


def write(res, out):
    meta = load(res, "meta.json") or {}
    after = load(res, "meta_after.json") or {}
    argon = load(res, "argon2.json")
    inproc = load(res, "inproc.jsonl") or {}
    bare = load(res, "bare_get.json")
    body = load(res, "body.json") or {}
    timing = load(res, "timing.jsonl") or {}
    rows = []  # (figure, settings, measured, reference, ratio, target, verdict)
    DEF = "hallpass defaults"
    LIB = "library: `open_sqlite`, cache off (every call reads SQLite)"

    def row(figure, measured, reference="", ratio=None, target="", ok=None, settings=DEF):
        verdict = "" if ok is None else ("PASS" if ok else "FAIL")
        # A load that was answered with errors measured the errors, not the figure.
        if ok is not None and "non-2xx" in f"{measured} {reference}":
            verdict, ok = "FAIL (INVALID: answers were not 2xx)", False
        if ok == "noisy":
            verdict = "NOISY (ratio > 1.1 is impossible on an idle machine: other load was on the cores)"
        rows.append((figure, settings, measured, reference, "" if ratio is None else f"{ratio:.3f}", target, verdict))

    def wrk_cell(w):
        if not w:
            return "not run"
        extra = ""
        if w.get("non2xx") or w.get("socket_errors"):
            extra = f"; non-2xx {w['non2xx']}, socket errors {w['socket_errors']}"
        return f"{fmt(w['rps'])} req/s (p50 {fmt(w.get('p50_ms'), 2)} ms, p99 {fmt(w.get('p99_ms'), 2)} ms{extra})"

    names = {"sqlite": "SQLite", "postgres": "PostgreSQL", "mysql": "MariaDB"}
    # 1. HTTP get-session vs bare axum
    for b, label in names.items():
        w = load(res, f"{b}_get.json")
        if not w:
            continue
        bare = load(res, f"{b}_bare.json") or load(res, "bare_get.json")
        r = w["rps"] / bare["rps"] if bare and bare["rps"] else None
        row(f"get-session over HTTP, {label}, 64 conn.", wrk_cell(w),
            f"bare axum, alternating: {wrk_cell(bare)}" if bare else "", r, "≥ 0.70 of bare axum", None if r is None else r >= 0.7)
        if bare and w.get("server_cpu_us_per_request") and bare.get("server_cpu_us_per_request"):
            h, z = w["server_cpu_us_per_request"], bare["server_cpu_us_per_request"]
            row(f"  server CPU per get-session, {label} (load-independent)", f"{h:.1f} µs CPU/request",
                f"bare axum {z:.1f} µs CPU/request", z / h, "(informative: bare / hallpass CPU per request)", None)
        q = load(res, f"{b}_logoff_get.json")
        if q:
            r = w["rps"] / q["rps"] if q["rps"] else None
            cpu = ""
            if q.get("server_cpu_us_per_request") and w.get("server_cpu_us_per_request"):
                cpu = f"; CPU {w['server_cpu_us_per_request']:.1f} vs {q['server_cpu_us_per_request']:.1f} µs/request"
            row(f"  get-session with logging off, {label}, 64 conn. (informative: the cost of the default log)",
                wrk_cell(q), f"defaults (log at INFO; successful reads at DEBUG), alternating: {fmt(w['rps'])} req/s{cpu}",
                r, "(informative: defaults / logging off; 1 − ratio is the default log's cost)", None,
                settings="`RUST_LOG=off`, else defaults")
    # 2. in-process
    s = inproc.get("sqlite")
    if s:
        row("get-session in-process, SQLite (library)", f"p50 {s['p50_us']} µs, p99 {s['p99_us']} µs, mean {s['mean_us']} µs (n={s['n']:,})",
            "", s["p50_us"] / 20.0, "p50 ≤ 20 µs (ratio = p50 / 20 µs, ≤ 1 passes)", s["p50_us"] <= 20.0, settings=LIB)
    c = inproc.get("cached")
    if c and "skipped" in c:
        row("get-session in-process, cached (library)", "not built yet: " + c["skipped"], "", None, "p50 ≤ 2 µs", None, settings=LIB)
    elif c:
        row("get-session in-process, cached (library)", f"p50 {c['p50_us']} µs, p99 {c['p99_us']} µs, mean {c['mean_us']} µs (n={c['n']:,})",
            "", c["p50_us"] / 2.0, "p50 ≤ 2 µs (ratio = p50 / 2 µs)", c["p50_us"] <= 2.0, settings="library: `open_sqlite`, cache on")
    f = inproc.get("store_find_session")
    if f:
        row("  of which `Store::find_session` (SQLite)", f"p50 {f['p50_us']} µs, p99 {f['p99_us']} µs, mean {f['mean_us']} µs", "", None, "(profile)", None, settings=LIB)
    # 3. login vs raw argon2
    for b, label in names.items():
        argon = load(res, f"{b}_argon2.json") or load(res, "argon2.json")
        if not argon:
            continue
        aref = f"raw Argon2id verify {fmt(argon['per_second'], 1)}/s on {argon['threads']} threads (m={argon['m_cost_kib']} KiB, t={argon['t_cost']}, p={argon['p_cost']})"
        w = load(res, f"{b}_login.json")
        if not w:
            continue
        r = w["rps"] / argon["per_second"]
        row(f"login over HTTP, {label}, 16 conn.", wrk_cell(w).replace(f"{fmt(w['rps'])} req/s", f"{fmt(w['rps'], 1)} req/s"),
            aref + ", alternating", r, "≥ 0.85 of raw Argon2id", "noisy" if r > 1.1 else r >= 0.85)
        if w.get("server_cpu_seconds") and argon.get("per_cpu_second"):
            per_cpu = w["requests"] / w["server_cpu_seconds"]
            row(f"  logins per server CPU-second, {label} (load-independent)", f"{per_cpu:.1f} logins/CPU-s",
                f"raw Argon2id {argon['per_cpu_second']:.1f} verifications/CPU-s", per_cpu / argon["per_cpu_second"],
                "(informative: ≥ 0.85 means login adds < 15 % CPU to its hash)", None)
            if w.get("db_cpu_seconds") is not None:
                both = w["server_cpu_seconds"] + w["db_cpu_seconds"]
                per_both = w["requests"] / both
                row(f"  logins per server + database-backend CPU-second, {label} (load-independent)",
                    f"{per_both:.1f} logins/CPU-s ({fmt(w['server_cpu_us_per_request'] / 1000, 2)} ms server + "
                    f"{fmt(w['db_cpu_us_per_request'] / 1000, 2)} ms database per login)",
                    f"raw Argon2id {argon['per_cpu_second']:.1f} verifications/CPU-s", per_both / argon["per_cpu_second"],
                    "(informative: the backends of the server's connections take CPU from the hashing threads)", None)
    # 4. saturation
    sg, sl = load(res, "saturated_get.json"), load(res, "saturated_login.json")
    if sg:
        row("get-session p99 while logins saturate the pool (SQLite; 4 conn. get-session + 32 conn. login)",
            f"p99 {fmt(sg.get('p99_ms'), 2)} ms (p50 {fmt(sg.get('p50_ms'), 2)} ms, {fmt(sg['rps'])} req/s)",
            f"logins meanwhile {fmt(sl['rps'], 1)} req/s, p99 {fmt(sl.get('p99_ms'), 0)} ms" if sl else "",
            sg["p99_ms"] / 5.0 if sg.get("p99_ms") else None, "p99 < 5 ms (ratio = p99 / 5 ms)",
            sg.get("p99_ms") is not None and sg["p99_ms"] < 5.0 and not sg.get("non2xx"))
    sg1, sl1 = load(res, "saturated1_get.json"), load(res, "saturated1_login.json")
    if sg1:
        row("  the same with `HALLPASS_HASH_THREADS=1` (informative)",
            f"p99 {fmt(sg1.get('p99_ms'), 2)} ms (p50 {fmt(sg1.get('p50_ms'), 2)} ms, {fmt(sg1['rps'])} req/s)",
            f"logins meanwhile {fmt(sl1['rps'], 1)} req/s" if sl1 else "",
            sg1["p99_ms"] / 5.0 if sg1.get("p99_ms") else None, "(informative)", None,
            settings="`HALLPASS_HASH_THREADS=1`, else defaults")
    # 5. equal timing
    t = timing.get("login_unknown_vs_wrong_password")
    if t:
        row(f"equal timing: login unknown user vs wrong password (medians of {t['samples_each']} each, interleaved)",
            f"{t['unknown_user_median_ms']} ms vs {t['wrong_password_median_ms']} ms (p90 {t['unknown_user_p90_ms']} / {t['wrong_password_p90_ms']} ms)",
            f"statuses {t.get('statuses', {})}", 1 + t["gap_percent"] / 100, "gap ≤ 5 % (ratio = slower / faster)",
            t["gap_percent"] <= 5 and t["unexpected_status"] == 0)
    t = timing.get("reset_code_unknown_vs_known")
    if t:
        row(f"equal timing: reset-code request unknown vs known user (medians of {t['samples_each']} each, interleaved)",
            f"{t['unknown_user_median_ms']} ms vs {t['known_user_median_ms']} ms (p90 {t['unknown_user_p90_ms']} / {t['known_user_p90_ms']} ms)",
            f"statuses {t.get('statuses', {})}", 1 + t["gap_percent"] / 100, "gap ≤ 5 % (ratio = slower / faster)",
            t["gap_percent"] <= 5 and t["unexpected_status"] == 0)
    # 6. scale
    for b, label in names.items():
        seed = load(res, f"scale_{b}_seed.json")
        if not seed:
            continue
        small_get = load(res, f"scale_{b}_small_get.json") or load(res, f"{b}_get.json")
        small_login = load(res, f"scale_{b}_small_login.json") or load(res, f"{b}_login.json")
        sz = f"{seed['users']:,} users / {seed['sessions']:,} sessions"
        row(f"scale {label}: seeding {sz}",
            f"{fmt(seed['seconds'], 0)} s ({fmt(seed['users_per_second'])} users/s, {fmt(seed['sessions_per_second'])} sessions/s)",
            "", None, "minutes, not hours", seed["seconds"] < 3600)
        for key, what in (("get", "get-session, 10,000 seeded tokens in turn"), ("get1", "get-session, one seeded token")):
            w = load(res, f"scale_{b}_{key}.json")
            if w and small_get:
                r = w["rps"] / small_get["rps"]
                row(f"scale {label}: {what}, 64 conn.", wrk_cell(w), f"small database, alternating: {fmt(small_get['rps'])} req/s", r, "≥ 0.80 of small", r >= 0.8)
        w = load(res, f"scale_{b}_login.json")
        if w and small_login:
            r = w["rps"] / small_login["rps"]
            row(f"scale {label}: login, 1,000 seeded users in turn, 16 conn.", wrk_cell(w), f"small database, alternating: {fmt(small_login['rps'], 1)} req/s", r, "≥ 0.80 of small", r >= 0.8)
        m = load(res, f"scale_{b}_mem_get.json")
        if m:
            mb = m["VmHWM_kb"] / 1024
            row(f"scale {label}: server memory after the get-session runs, before any login (VmHWM)", f"{mb:,.0f} MB (VmRSS {m['VmRSS_kb'] / 1024:,.0f} MB)", "", mb / 200, "< 200 MB", mb < 200)
        m = load(res, f"scale_{b}_mem.json")
        if m:
            mb = m["VmHWM_kb"] / 1024
            row(f"scale {label}: server memory at the end, after the login run (VmHWM)", f"{mb:,.0f} MB (VmRSS {m['VmRSS_kb'] / 1024:,.0f} MB)", "", mb / 200, "< 200 MB (ratio = HWM / 200 MB)", mb < 200)
        nb = load(res, f"scale_{b}_bytes.json")
        if b == "sqlite" and "bytes_per_session" in seed:
            row(f"scale {label}: database bytes per session", f"{seed['bytes_per_session']:.0f} B (file grew {seed['session_bytes'] / 2**20:,.0f} MiB for the sessions)", "", None, "(reported)", None)
        elif nb:
            row(f"scale {label}: database bytes per session", f"{nb['session_table_bytes'] / max(nb['rows'], 1):.0f} B (sessions table + indexes {nb['session_table_bytes'] / 2**20:,.0f} MiB)", "", None, "(reported)", None)
    for b, label in names.items():
        m = load(res, f"{b}_mem.json")
        if m:
            row(f"server memory after the small-database runs, {label} (VmHWM)", f"{m['VmHWM_kb'] / 1024:,.0f} MB", "", None, "(reported)", None)
    # 7. sleepless-sessions over HTTP (its package behind bench/sleepless/server.js)
    SL = "sleepless-sessions 1.6.0 as shipped, behind `bench/sleepless/server.js` (node:http, one MariaDB connection)"
    sg_, sa_ = load(res, "sleepless_get.json"), load(res, "sleepless_login.json")
    hg = load(res, "sleepless_hallpass_get.json")
    hl = load(res, "sleepless_hallpass_login.json")
    if sg_:
        r = hg["rps"] / sg_["rps"] if hg and sg_["rps"] else None
        row("get-session over HTTP on MariaDB: hallpass vs sleepless-sessions `get_session`, 64 conn. each, alternating",
            "hallpass " + wrk_cell(hg), f"sleepless ({SL}): {wrk_cell(sg_)}", r, "≥ 20× sleepless",
            None if r is None else r >= 20 and not sg_.get("non2xx"), settings=DEF + "; sleepless: its defaults")
    if sa_:
        r = hl["rps"] / sa_["rps"] if hl and sa_["rps"] else None
        row("login over HTTP on MariaDB: hallpass vs sleepless-sessions `authenticate`, 16 conn. each, alternating",
            "hallpass " + wrk_cell(hl), f"sleepless: {wrk_cell(sa_)}", r,
            "(reported: sleepless hashes with one SHA-1, hallpass with Argon2id; its non-2xx are `ER_DUP_ENTRY` session-id collisions)",
            None, settings=DEF + "; sleepless: its defaults")
    m = load(res, "sleepless_mem.json")
    if m:
        row("sleepless-sessions server memory after its runs (VmHWM)", f"{m['VmHWM_kb'] / 1024:,.0f} MB", "", None, "(reported)", None,
            settings="sleepless: its defaults")
    # 8. Better Auth, same run, same load, SQLite
    bam = load(res, "ba_meta.json") or {}
    BA = f"Better Auth {bam.get('better-auth', '?')} defaults, `NODE_ENV=production`, email+password on"
    BA_NL = BA + ", **rate limiter off** (`rateLimit.enabled: false`)"
    hbg, bag, bcg = load(res, "ba_hallpass_get.json"), load(res, "ba_get.json"), load(res, "ba_cache_get.json")

    def cpu_of(w):
        return f"; {w['server_cpu_us_per_request']:.0f} µs CPU/request" if w and w.get("server_cpu_us_per_request") else ""
    for w, what, st in ((bag, "no cookie cache (every check reads SQLite)", BA_NL),
                        (bcg, "cookie cache on (`session.cookieCache.enabled: true`, maxAge 300 s; the client sends the cached-session cookie)",
                         BA_NL + ", `session.cookieCache.enabled: true`")):
        if w and hbg:
            r = hbg["rps"] / w["rps"] if w["rps"] else None
            row(f"session check over HTTP, SQLite, 64 conn.: hallpass `GET /v1/session` vs Better Auth `GET /api/auth/get-session`, {what}",
                "hallpass " + wrk_cell(hbg) + cpu_of(hbg), "Better Auth " + wrk_cell(w) + cpu_of(w), r,
                "(reported: hallpass / Better Auth)", None, settings=DEF + "; " + st)
    bal, bsc = load(res, "ba_login.json"), load(res, "ba_scrypt.json")
    hbl, har = load(res, "ba_hallpass_login.json"), load(res, "ba_hallpass_argon2.json")
    if bal and bsc:
        r = bal["rps"] / bsc["per_second"] if bsc["per_second"] else None
        per_cpu = ""
        if bal.get("server_cpu_seconds") and bsc.get("per_cpu_second"):
            per_cpu = f"; {bal['requests'] / bal['server_cpu_seconds']:.1f} sign-ins/CPU-s vs {bsc['per_cpu_second']:.1f} verifications/CPU-s"
        row("Better Auth sign-in `POST /api/auth/sign-in/email`, SQLite, 16 conn., vs its raw hash",
            wrk_cell(bal).replace(f"{fmt(bal['rps'])} req/s", f"{fmt(bal['rps'], 1)} req/s") + per_cpu,
            f"raw scrypt verify (node `crypto.scrypt`, N={bsc.get('N')} r={bsc.get('r')} p={bsc.get('p')} dkLen={bsc.get('dkLen')}, "
            f"{bsc.get('concurrency')} in flight on libuv's {bsc.get('threads')} threads) {fmt(bsc['per_second'], 1)}/s, alternating",
            r, "(reported: sign-in / raw hash)", None, settings=BA_NL)
    if hbl and har:
        r = hbl["rps"] / har["per_second"] if har["per_second"] else None
        per_cpu = ""
        if hbl.get("server_cpu_seconds") and har.get("per_cpu_second"):
            per_cpu = f"; {hbl['requests'] / hbl['server_cpu_seconds']:.1f} logins/CPU-s vs {har['per_cpu_second']:.1f} verifications/CPU-s"
        row("hallpass login `POST /v1/sessions`, SQLite, 16 conn., vs its raw hash (same alternation as Better Auth's)",
            wrk_cell(hbl).replace(f"{fmt(hbl['rps'])} req/s", f"{fmt(hbl['rps'], 1)} req/s") + per_cpu,
            f"raw Argon2id verify (m={har.get('m_cost_kib')} KiB t={har.get('t_cost')} p={har.get('p_cost')}, {har.get('threads')} threads) "
            f"{fmt(har['per_second'], 1)}/s, alternating", r, "(reported: login / raw hash)", None)
    if bal and hbl:
        row("sign-in rate: hallpass login vs Better Auth sign-in (each bound by its own hash: Argon2id m=19 MiB t=2 vs scrypt N=16384 r=16, 32 MiB)",
            f"hallpass {fmt(hbl['rps'], 1)} req/s", f"Better Auth {fmt(bal['rps'], 1)} req/s",
            hbl["rps"] / bal["rps"] if bal["rps"] else None, "(reported: hallpass / Better Auth)", None,
            settings=DEF + "; " + BA_NL)
    for f, who, st in (("ba_hallpass_mem.json", "hallpass (the server of these runs)", DEF),
                       ("ba_mem.json", "Better Auth, no cookie cache", BA_NL),
                       ("ba_cache_mem.json", "Better Auth, cookie cache on", BA_NL + ", cookie cache on")):
        m = load(res, f)
        if m:
            row(f"peak memory after the session-check and sign-in runs above: {who} (VmHWM)",
                f"{m['VmHWM_kb'] / 1024:,.0f} MB (VmRSS {m['VmRSS_kb'] / 1024:,.0f} MB)", "", None, "(reported)", None, settings=st)
    for f, what, rule in (("ba_default_get.json", "get-session, 64 conn.", "100 per 10 s"),
                          ("ba_default_login.json", "sign-in, 16 conn.", "3 per 10 s")):
        d = load(res, f)
        if d:
            warn = "; its log warns of the single shared bucket" if d.get("shared_bucket_warning") else ""
            row(f"Better Auth with its **default rate limiter** under load: {what}",
                f"{fmt(d['ok'])} answered in {d['seconds']:.0f} s ({d['ok'] / d['seconds']:.1f}/s), {fmt(d['non2xx'])} refused (429)",
                f"behind plain node:http no client address reaches it (it reads `x-forwarded-for`), so all clients share one bucket per path: {rule}{warn}",
                None, "(reported: why the rate rows turn it off)", None, settings=BA + " (rate limiter on: its default in production)")
    st_ba, st_h, st_set = load(res, "ba_stale.json"), load(res, "hallpass_stale.json"), load(res, "ba_stale_setting.json") or {}
    if st_h:
        row("signed-out session: answers that still said valid after `DELETE /v1/session` (polled every 100 ms by another client)",
            f"{st_h['valid_after_signout']} valid answers; first refusal (401) {fmt(st_h['first_refused_ms'], 1)} ms after the sign-out",
            "", None, "0 valid answers", st_h["valid_after_signout"] == 0 and st_h["first_refused_ms"] is not None)
    if st_ba:
        ma = st_set.get("max_age_s", 300)
        last = "none" if st_ba["last_valid_ms"] is None else f"the last {st_ba['last_valid_ms'] / 1000:.1f} s after"
        first = "none within the poll" if st_ba["first_refused_ms"] is None else f"{st_ba['first_refused_ms'] / 1000:.1f} s after"
        row(f"signed-out session, Better Auth cookie cache on (maxAge {ma} s): answers that still said valid after "
            "`POST /api/auth/sign-out` (another client holding the cookies, polled every 100 ms)",
            f"{st_ba['valid_after_signout']} valid answers, {last} the sign-out; first refusal {first}",
            f"the session was gone from its database: {'yes' if st_ba.get('signed_out_in_database') else 'NO'} "
            f"(asked with `disableCookieCache=true`); sign-out {st_ba.get('signout_after_signin_ms')} ms after sign-in",
            None, "(reported)", None,
            settings=BA_NL + ", `session.cookieCache.enabled: true`" + (f", `maxAge: {ma}`" if st_set.get("explicit") else " (maxAge default 300 s)"))

    lines = [
        "# Benchmark results",
        "",
        "Written by `bench/run.sh` (see `bench/README.md` for what each figure means). Every",
        "load runs on 127.0.0.1 on the same cores as the server: wrk and the server share the",
        "machine. Ratios: a change that makes one worse shows here.",
        "",
        f"- date: {meta.get('date', '?')}",
        f"- command: `{meta.get('command', '?')}` (each wrk/Node run {meta.get('duration', '?')})",
        f"- git commit: `{meta.get('commit', '?')}`" + (" (working tree had uncommitted changes)" if meta.get("dirty") else ""),
        f"- machine: {meta.get('nproc', '?')} CPUs ({meta.get('cpu', '?')}), {meta.get('ram_gib', '?')} GiB RAM, Linux {meta.get('kernel', '?')}",
        f"- load generator: {meta.get('wrk', '?')}; load average before {' '.join(meta.get('load_before', []))}, after {' '.join(after.get('load_after', []))}",
        f"- get-session answer body: {body.get('body_bytes', '?')} bytes (the bare axum server answers the same bytes)",
        "- settings: \"hallpass defaults\" is what a user gets: only `HALLPASS_DATABASE_URL`, `HALLPASS_LISTEN` and "
        "`HALLPASS_LOG_FORMAT=json` are set (no `RUST_LOG`: the default filter, INFO); a tuned variant names its setting",
        f"- peers: Node {bam.get('node', '?')}; Better Auth {bam.get('better-auth', '?')} with better-sqlite3 {bam.get('better-sqlite3', '?')}; sleepless-sessions 1.6.0"
        if bam else "- peers: sleepless-sessions 1.6.0",
        "",
        "| figure | settings | measured | reference | ratio | target | verdict |",
        "|---|---|---|---|---|---|---|",
    ]
    for r_ in rows:
        lines.append("| " + " | ".join(str(x).replace("|", "\\|") for x in r_) + " |")
    noisy = sum(1 for r_ in rows if r_[6].startswith("NOISY"))
    passed = sum(1 for r_ in rows if r_[6] == "PASS")
    failed = sum(1 for r_ in rows if r_[6].startswith("FAIL"))
    lines += ["", f"{passed} targets met, {failed} missed, {noisy} not judged (noisy). Raw figures of this run: `bench/raw/`.", ""]
    # Sections other scripts measure (bench/clients.sh) follow KEEP_MARKER: kept as they are.
    kept = ""
    if os.path.exists(out):
        old_text = open(out).read()
        at = old_text.find(KEEP_MARKER)
        if at >= 0:
            kept = "\n" + old_text[at:]
    open(out, "w").write("\n".join(lines) + kept)


if __name__ == "__main__":
    if sys.argv[1] == "wrk":
        print(json.dumps(parse_wrk(sys.argv[2])))
    elif sys.argv[1] == "wrkmany":
        args = sys.argv[2:]
        cpu = dbcpu = None
        if "--cpu" in args:
            i = args.index("--cpu")
            cpu = sum(int(l) for l in open(args[i + 1]) if l.strip()) / 100.0
            args = args[:i] + args[i + 2:]
        if "--dbcpu" in args:
            i = args.index("--dbcpu")
            dbcpu = sum(int(l) for l in open(args[i + 1]) if l.strip()) / 100.0
            args = args[:i] + args[i + 2:]
        out = combine_wrk(args)
        if cpu is not None:
            out["server_cpu_seconds"] = cpu
            out["server_cpu_us_per_request"] = cpu / max(out["requests"], 1) * 1e6
        if dbcpu is not None:
            out["db_cpu_seconds"] = dbcpu
            out["db_cpu_us_per_request"] = dbcpu / max(out["requests"], 1) * 1e6
        print(json.dumps(out))
    elif sys.argv[1] == "argon2many":
        print(json.dumps(combine_argon2(sys.argv[2:])))
    elif sys.argv[1] == "write":
        write(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)
