#!/usr/bin/env python3
"""Generates web-latency.ndjson: four days of sampled web requests (two services behind three
hosts) with a daily traffic pattern and two incidents. Deterministic (fixed seed), < 1 MB.

Each line is one sampled request: timestamp, service, host, HTTP status and latency in ms.

Incidents:
  1. 2026-03-04 13:10-13:50 UTC: checkout latency rises about fivefold (a slow database).
  2. 2026-03-05 10:00-10:45 UTC: search traffic collapses and most of what is left times out
     after about 3 s with a 504 (a bad deploy).

Run: python3 data/samples/generate.py > data/samples/web-latency.ndjson
"""
import json
import math
import random
from datetime import datetime, timedelta, timezone

START = datetime(2026, 3, 2, tzinfo=timezone.utc)
DAYS = 4
SERVICES = {
    # sampled requests per minute at the daily peak, typical latency in ms
    "checkout": (0.8, 120.0),
    "search": (1.6, 45.0),
}
LATENCY_INCIDENT = (datetime(2026, 3, 4, 13, 10, tzinfo=timezone.utc), 40)
OUTAGE = (datetime(2026, 3, 5, 10, 0, tzinfo=timezone.utc), 45)


def during(t, incident):
    start, minutes = incident
    return start <= t < start + timedelta(minutes=minutes)


def poisson(rng, mean):
    # Knuth's method: fine for the small means used here.
    limit, k, p = math.exp(-mean), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def main():
    rng = random.Random(7)
    minute = START
    end = START + timedelta(days=DAYS)
    while minute < end:
        hour = minute.hour + minute.minute / 60.0
        # Daily load: lowest at 03:00, highest at 15:00 UTC.
        load = 0.55 - 0.45 * math.cos((hour - 3.0) / 24.0 * 2 * math.pi)
        events = []
        for service, (peak_rate, base_latency) in SERVICES.items():
            rate = peak_rate * load
            if service == "search" and during(minute, OUTAGE):
                rate *= 0.1
            for _ in range(poisson(rng, rate)):
                t = minute + timedelta(seconds=rng.randrange(60))
                latency = base_latency * (0.9 + 0.25 * load) * rng.lognormvariate(0, 0.25)
                status = 200 if rng.random() > 0.01 else 500
                if service == "checkout" and during(t, LATENCY_INCIDENT):
                    latency *= 5.0
                if service == "search" and during(t, OUTAGE) and rng.random() < 0.8:
                    status = 504
                    latency = rng.uniform(2900.0, 3100.0)
                events.append((t, service, status, latency))
        for t, service, status, latency in sorted(events, key=lambda e: e[0]):
            print(json.dumps({
                "timestamp": t.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "service": service,
                "host": f"web-{rng.randint(1, 3)}",
                "status": status,
                "latency_ms": round(latency, 1),
            }, separators=(",", ":")))
        minute += timedelta(minutes=1)


if __name__ == "__main__":
    main()
