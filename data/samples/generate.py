#!/usr/bin/env python3
"""Generates web-latency.ndjson: four days of per-service web traffic summaries (one record per
service every two minutes) with a daily load pattern and two incidents. Deterministic (fixed seed).

Incidents:
  1. 2026-03-04 13:10-13:50 UTC: checkout latency rises about fivefold (a slow database).
  2. 2026-03-05 03:00-03:40 UTC: search traffic collapses and errors spike (a failed deploy).

Run: python3 data/samples/generate.py > data/samples/web-latency.ndjson
"""
import json
import math
import random
from datetime import datetime, timedelta, timezone

START = datetime(2026, 3, 2, tzinfo=timezone.utc)
DAYS = 4
STEP = timedelta(minutes=2)
SERVICES = {
    # base requests per 2 minutes at the daily peak, base latency in ms
    "checkout": (900, 120.0),
    "search": (2400, 45.0),
}


def in_window(t, start, minutes):
    return start <= t < start + timedelta(minutes=minutes)


def main():
    rng = random.Random(7)
    latency_incident = datetime(2026, 3, 4, 13, 10, tzinfo=timezone.utc)
    outage = datetime(2026, 3, 5, 3, 0, tzinfo=timezone.utc)
    t = START
    end = START + timedelta(days=DAYS)
    while t < end:
        hour = t.hour + t.minute / 60.0
        # Daily load: low at 03:00, peak at 15:00 UTC.
        load = 0.55 - 0.45 * math.cos((hour - 3.0) / 24.0 * 2 * math.pi)
        for service, (peak, base_latency) in SERVICES.items():
            requests = max(0, int(rng.gauss(peak * load, peak * 0.04)))
            latency = base_latency * (0.9 + 0.25 * load) * rng.lognormvariate(0, 0.08)
            errors = sum(1 for _ in range(3) if rng.random() < 0.15)
            if service == "checkout" and in_window(t, latency_incident, 40):
                latency *= 5.0
            if service == "search" and in_window(t, outage, 40):
                requests = int(requests * 0.04)
                errors += rng.randint(40, 80)
            record = {
                "timestamp": t.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "service": service,
                "host": f"web-{rng.randint(1, 3)}",
                "requests": requests,
                "errors": errors,
                "latency_ms": round(latency, 1),
            }
            print(json.dumps(record, separators=(",", ":")))
        t += STEP


if __name__ == "__main__":
    main()
