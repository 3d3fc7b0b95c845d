#!/usr/bin/env python3
"""Writes testdata/demo/access.log: benign API traffic in nginx combined format
with two scripted attacks mixed in (a credential brute force ending in a
success, and an admin/secret-file probe). Deterministic: same seed, same file."""
import datetime as dt
import random
import sys

rnd = random.Random(20261125)
start = dt.datetime(2026, 11, 20, 9, 0, 0, tzinfo=dt.timezone.utc)
users = ["alice", "bob", "carol", "-", "-", "-"]
clients = ["10.0.4.21", "10.0.4.22", "10.0.7.13", "192.0.2.44", "192.0.2.45", "2001:db8::7"]
agents = [
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36",
    "okhttp/4.12.0",
    "python-requests/2.32.3",
    "Go-http-client/2.0",
]
paths = [("GET", "/api/v1/orders", 200), ("GET", "/api/v1/orders/{id}", 200), ("POST", "/api/v1/orders", 201),
         ("GET", "/api/v1/customers/{id}", 200), ("PUT", "/api/v1/customers/{id}", 204),
         ("GET", "/api/v1/catalog?page={n}", 200), ("GET", "/api/v1/orders/{id}", 404), ("GET", "/healthz", 200)]

def line(t, ip, user, method, path, status, size, ua, ref="-"):
    ts = t.strftime("%d/%b/%Y:%H:%M:%S +0000")
    return f'{ip} - {user} [{ts}] "{method} {path} HTTP/1.1" {status} {size} "{ref}" "{ua}"'

events = []
t = start
for i in range(480):
    t += dt.timedelta(milliseconds=rnd.randint(200, 1500))
    m, p, s = rnd.choice(paths)
    p = p.replace("{id}", str(rnd.randint(1000, 9999))).replace("{n}", str(rnd.randint(1, 20)))
    events.append((t, line(t, rnd.choice(clients), rnd.choice(users), m, p, s, rnd.randint(80, 9000), rnd.choice(agents))))

# Attack 1: brute force against the login endpoint, then a success.
t = start + dt.timedelta(minutes=3)
for i in range(25):
    t += dt.timedelta(milliseconds=rnd.randint(300, 1800))
    events.append((t, line(t, "203.0.113.9", "-", "POST", "/api/login", 401, 53, "python-requests/2.31.0")))
t += dt.timedelta(seconds=1)
events.append((t, line(t, "203.0.113.9", "-", "POST", "/api/login", 200, 412, "python-requests/2.31.0")))

# Attack 2: probing for admin consoles and secret files.
t = start + dt.timedelta(minutes=5)
for p, s in [("/admin", 404), ("/wp-admin/", 404), ("/.git/config", 403), ("/admin/login", 404),
             ("/.env.bak", 404), ("/wp-admin/setup.php", 404), ("/.git/HEAD", 403), ("/.env", 200)]:
    t += dt.timedelta(milliseconds=rnd.randint(200, 900))
    events.append((t, line(t, "198.51.100.23", "-", "GET", p, s, rnd.randint(100, 700), "curl/8.5.0")))

events.sort(key=lambda e: e[0])
out = sys.argv[1] if len(sys.argv) > 1 else "testdata/demo/access.log"
with open(out, "w") as f:
    for _, l in events:
        f.write(l + "\n")
