"""The whole anomaly-detection workflow through the official Python client, against a running auspex.

Usage: python python_workflow.py http://127.0.0.1:PORT

Works with the `elasticsearch` package 7.17.x, 8.x and 9.x. The differences that matter to the server:
7.x sends parameters in the query string and bodies as `body=`, checks `GET /` first and posts `_data` as
NDJSON; 8.x/9.x send flush/results parameters in a JSON body (results as POST), 8.x posts `_data` as a JSON
array, and 9.x sends `compatible-with=9` media types. Every step asserts what comes back; the script exits
non-zero on the first failure and prints `N passed, 0 failed` when all steps pass.
"""

import re
import sys

import elasticsearch

MAJOR = int(elasticsearch.__versionstr__.split(".")[0])
URL = sys.argv[1]
JOB = f"py{MAJOR}-flights"
OTHER = f"py{MAJOR}-other"
START = 1403481600  # 2014-06-23T00:00:00Z
HOUR = 3600
PASSED = []


def step(name):
    def wrap(fn):
        fn()
        PASSED.append(name)
        print(f"ok {len(PASSED)} - {name}", flush=True)
        return fn

    return wrap


def body_of(response):
    """8.x/9.x answer ObjectApiResponse; 7.x a dict (or text for cat)."""
    return getattr(response, "body", response)


def records(from_hour, hours, spike_hour=None):
    out = []
    for hour in range(from_hour, from_hour + hours):
        for k in range(6):
            for a, airline in enumerate(["AAL", "JZA", "KLM"]):
                t = START + hour * HOUR + k * 600 + a
                value = 100.0 + (hour * 31 + k * 7 + a * 13) % 17
                if hour == spike_hour and airline == "JZA":
                    value = 5000.0
                out.append({"time": t, "airline": airline, "responsetime": value})
    return out


if MAJOR >= 8:
    es = elasticsearch.Elasticsearch(URL, request_timeout=60)
else:
    es = elasticsearch.Elasticsearch([URL], timeout=60)


class Ml:
    """One call per API, hiding the 7.x body= style behind the 8.x keyword style."""

    def __init__(self, client):
        self.ml = client.ml

    def __getattr__(self, name):
        method = getattr(self.ml, name)
        body_params = BODY_PARAMS_7.get(name)
        if MAJOR >= 8 or body_params is None:
            return lambda **kw: body_of(method(**kw))

        def call(**kw):
            body = {k: kw.pop(k) for k in list(kw) if k in body_params}
            if body or name in BODY_REQUIRED_7:
                kw["body"] = body
            return body_of(method(**kw))

        return call


# In 7.x these go in the body; every other keyword is a query parameter.
BODY_PARAMS_7 = {
    "put_job": {"analysis_config", "data_description", "description", "groups", "analysis_limits",
                "model_snapshot_retention_days", "results_retention_days"},
    "update_job": {"description", "groups", "model_snapshot_retention_days", "results_retention_days",
                   "custom_settings", "detectors"},
    "update_model_snapshot": {"description", "retain"},
    "get_model_snapshots": set(),
    "get_buckets": {"page"},
    "get_records": {"page"},
    "get_influencers": {"page"},
    "validate": {"analysis_config", "data_description"},
    "validate_detector": set(),
    "estimate_model_memory": {"analysis_config", "overall_cardinality", "max_bucket_cardinality"},
    "put_filter": {"description", "items"},
    "update_filter": {"description", "add_items", "remove_items"},
    "put_calendar": {"description", "job_ids"},
    "post_calendar_events": {"events"},
}
BODY_REQUIRED_7 = {"put_job", "update_job", "update_model_snapshot", "validate", "estimate_model_memory",
                   "put_filter", "update_filter", "post_calendar_events"}

ml = Ml(es)


API_ERROR = elasticsearch.ApiError if MAJOR >= 8 else elasticsearch.TransportError


def expect_error(status, error_type, fn, reason_part=None):
    try:
        fn()
    except API_ERROR as error:
        got = error.meta.status if MAJOR >= 8 else error.status_code
        info = error.body if MAJOR >= 8 else error.info
        assert got == status, (got, info)
        assert info["error"]["type"] == error_type, info
        if reason_part:
            assert reason_part in info["error"]["reason"], info
        return info
    raise AssertionError(f"expected a {status} {error_type}")


def post(job_id, docs):
    if MAJOR >= 8:
        return ml.post_data(job_id=job_id, data=docs)
    return ml.post_data(job_id=job_id, body=docs)


def cleanup():
    for job in (JOB, OTHER):
        try:
            ml.delete_job(job_id=job, force=True)
        except Exception:  # noqa: BLE001 - absent is fine
            pass


cleanup()


@step("server info")
def _():
    info = body_of(es.info())
    assert info["version"]["number"].startswith("8."), info
    assert info["tagline"] == "You Know, for Search"


@step("put job")
def _():
    job = ml.put_job(
        job_id=JOB,
        analysis_config={
            "bucket_span": "1h",
            "detectors": [{"function": "mean", "field_name": "responsetime", "by_field_name": "airline"}],
            "influencers": ["airline"],
        },
        data_description={"time_field": "time", "time_format": "epoch"},
        description="python client workflow",
        groups=["clients"],
    )
    assert job["job_id"] == JOB
    assert job["analysis_config"]["detectors"][0]["detector_description"] == "mean(responsetime) by airline"
    assert job["model_snapshot_retention_days"] == 10


@step("validate and estimate")
def _():
    assert ml.validate(
        analysis_config={"bucket_span": "1h", "detectors": [{"function": "count"}]},
        data_description={"time_field": "time"},
    )["acknowledged"] is True
    if MAJOR >= 8:
        ok = ml.validate_detector(detector={"function": "mean", "field_name": "x"})
    else:
        ok = ml.validate_detector(body={"function": "mean", "field_name": "x"})
    assert ok["acknowledged"] is True
    estimate = ml.estimate_model_memory(
        analysis_config={"bucket_span": "5m", "detectors": [
            {"function": "sum", "field_name": "bytes", "by_field_name": "status", "partition_field_name": "app"}],
            "influencers": ["source_ip", "dest_ip"]},
        overall_cardinality={"status": 10, "app": 50},
        max_bucket_cardinality={"source_ip": 300, "dest_ip": 30},
    )
    assert estimate["model_memory_estimate"] == "21mb", estimate
    info = ml.info()
    assert info["defaults"]["anomaly_detectors"]["model_snapshot_retention_days"] == 10
    assert info["upgrade_mode"] is False


@step("open, post data")
def _():
    assert ml.open_job(job_id=JOB)["opened"] is True
    counts = post(JOB, records(0, 24))
    assert counts["processed_record_count"] == 24 * 18, counts
    assert counts["invalid_date_count"] == 0


@step("flush: plain, calc_interim with start/end, advance_time, skip_time")
def _():
    plain = ml.flush_job(job_id=JOB)
    assert plain["flushed"] is True
    assert plain["last_finalized_bucket_end"] == (START + 23 * HOUR) * 1000, plain
    interim = ml.flush_job(job_id=JOB, calc_interim=True, start=str(START + 23 * HOUR),
                           end=str(START + 24 * HOUR))
    assert interim["flushed"] is True
    buckets = ml.get_buckets(job_id=JOB, start=str(START + 23 * HOUR))
    assert buckets["count"] == 1 and buckets["buckets"][0]["is_interim"] is True, buckets
    advanced = ml.flush_job(job_id=JOB, advance_time=str(START + 24 * HOUR))
    assert advanced["last_finalized_bucket_end"] == (START + 24 * HOUR) * 1000, advanced
    buckets = ml.get_buckets(job_id=JOB, start=str(START + 23 * HOUR), exclude_interim=True)
    assert buckets["count"] == 1 and buckets["buckets"][0]["is_interim"] is False, buckets
    skipped = ml.flush_job(job_id=JOB, skip_time=str(START + 26 * HOUR))
    assert skipped["last_finalized_bucket_end"] == (START + 26 * HOUR) * 1000, skipped
    # More data after the gap, with a spike.
    second = post(JOB, records(26, 24, spike_hour=40))
    # Each `_data` answer holds the counts of that upload alone (ES's incremental stats).
    assert second["processed_record_count"] == 24 * 18, second
    assert "earliest_record_timestamp" not in second and "log_time" not in second, second
    ml.flush_job(job_id=JOB, advance_time=str(START + 50 * HOUR))


@step("results: buckets, records and influencers with filters, sort and paging")
def _():
    everything = ml.get_buckets(job_id=JOB)
    assert everything["count"] == 48, everything["count"]  # 24 + 24 finalized, the skipped 2 h absent
    page = ml.get_buckets(job_id=JOB, page={"from": 2, "size": 3}, sort="timestamp", desc=True)
    stamps = [b["timestamp"] for b in page["buckets"]]
    assert len(stamps) == 3 and stamps == sorted(stamps, reverse=True), stamps
    top = ml.get_buckets(job_id=JOB, anomaly_score=1, sort="anomaly_score", desc=True, expand=True)
    assert top["count"] >= 1
    assert top["buckets"][0]["timestamp"] == (START + 40 * HOUR) * 1000, top["buckets"][0]
    assert top["buckets"][0]["records"], "expand=true attaches records"
    recs = ml.get_records(job_id=JOB, record_score=1, page={"from": 0, "size": 5})
    assert recs["records"][0]["by_field_value"] == "JZA", recs["records"][0]
    assert recs["records"][0]["timestamp"] == (START + 40 * HOUR) * 1000
    window = ml.get_records(job_id=JOB, start=str(START + 41 * HOUR), end=str(START + 50 * HOUR),
                            record_score=50)
    assert all(r["timestamp"] >= (START + 41 * HOUR) * 1000 for r in window["records"])
    infl = ml.get_influencers(job_id=JOB, influencer_score=1, sort="influencer_score", desc=True,
                              page={"from": 0, "size": 5})
    first = infl["influencers"][0]
    assert first["influencer_field_name"] == "airline" and first["airline"] == "JZA", first
    assert first["timestamp"] == (START + 40 * HOUR) * 1000, first
    assert first["influencer_score"] == first["initial_influencer_score"]
    assert ml.get_influencers(job_id=JOB, start=str(START + 41 * HOUR), influencer_score=50)["count"] == 0


@step("stats while open")
def _():
    stats = ml.get_job_stats(job_id=JOB)["jobs"][0]
    assert stats["state"] == "opened"
    assert stats["data_counts"]["processed_record_count"] == 48 * 18
    assert stats["model_size_stats"]["model_bytes"] > 0


@step("overall buckets across jobs")
def _():
    ml.put_job(
        job_id=OTHER,
        analysis_config={"bucket_span": "2h", "detectors": [{"function": "count"}]},
        data_description={"time_field": "time", "time_format": "epoch"},
        groups=["clients"],
    )
    overall = ml.get_overall_buckets(job_id="clients", top_n=2, overall_score=0)
    assert overall["count"] > 0
    first = overall["overall_buckets"][0]
    assert first["bucket_span"] == 7200 and first["result_type"] == "overall_bucket", first
    high = ml.get_overall_buckets(job_id=JOB, overall_score=50)
    assert (START + 40 * HOUR) * 1000 in [b["timestamp"] for b in high["overall_buckets"]], high
    assert all(b["overall_score"] >= 50 for b in high["overall_buckets"]), high


@step("close; snapshots list and update")
def _():
    assert ml.close_job(job_id=JOB)["closed"] is True
    snaps = ml.get_model_snapshots(job_id=JOB)
    assert snaps["count"] == 1, snaps
    first = snaps["model_snapshots"][0]
    assert re.fullmatch(r"State persisted due to job close at \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+0000",
                        first["description"]), first["description"]
    assert first["latest_record_time_stamp"] == (START + 49 * HOUR + 5 * 600 + 2) * 1000, first
    updated = ml.update_model_snapshot(job_id=JOB, snapshot_id=first["snapshot_id"],
                                       description="after two days", retain=True)
    assert updated["acknowledged"] is True and updated["model"]["retain"] is True
    job = ml.get_jobs(job_id=JOB)["jobs"][0]
    assert job["model_snapshot_id"] == first["snapshot_id"], job


@step("second snapshot, revert, delete")
def _():
    first = ml.get_model_snapshots(job_id=JOB)["model_snapshots"][0]["snapshot_id"]
    ml.open_job(job_id=JOB)
    post(JOB, records(50, 6, spike_hour=53))
    ml.close_job(job_id=JOB)
    snaps = ml.get_model_snapshots(job_id=JOB)
    ids = [s["snapshot_id"] for s in snaps["model_snapshots"]]
    assert snaps["count"] == 2 and ids[1] == first, ids  # newest first
    oldest_first = ml.get_model_snapshots(job_id=JOB, desc=False)
    assert [s["snapshot_id"] for s in oldest_first["model_snapshots"]] == ids[::-1]
    one = ml.get_model_snapshots(job_id=JOB, snapshot_id=first)
    assert one["count"] == 1 and one["model_snapshots"][0]["description"] == "after two days"
    expect_error(409, "status_exception",
                 lambda: (ml.open_job(job_id=JOB), ml.revert_model_snapshot(job_id=JOB, snapshot_id=first)),
                 "Can only revert to a model snapshot when the job is closed.")
    ml.close_job(job_id=JOB)
    reverted = ml.revert_model_snapshot(job_id=JOB, snapshot_id=first, delete_intervening_results=True)
    assert reverted["model"]["snapshot_id"] == first
    stats = ml.get_job_stats(job_id=JOB)["jobs"][0]
    assert stats["data_counts"]["processed_record_count"] == 48 * 18, stats["data_counts"]
    buckets = ml.get_buckets(job_id=JOB, start=str(START + 50 * HOUR))
    assert buckets["count"] == 0, buckets
    expect_error(400, "illegal_argument_exception",
                 lambda: ml.delete_model_snapshot(job_id=JOB, snapshot_id=first),
                 "is the active snapshot")
    newest = [i for i in ids if i != first][0]
    assert ml.delete_model_snapshot(job_id=JOB, snapshot_id=newest)["acknowledged"] is True
    expect_error(404, "resource_not_found_exception",
                 lambda: ml.get_model_snapshots(job_id=JOB, snapshot_id=newest))
    # Reopening continues from the reverted model.
    ml.open_job(job_id=JOB)
    post(JOB, records(50, 2))
    stats = ml.get_job_stats(job_id=JOB)["jobs"][0]
    assert stats["data_counts"]["processed_record_count"] == 50 * 18, stats["data_counts"]
    ml.close_job(job_id=JOB)


@step("update job, cat, expired data")
def _():
    job = ml.update_job(job_id=JOB, description="updated", groups=["clients", "more"],
                        results_retention_days=30)
    assert job["description"] == "updated" and job["groups"] == ["clients", "more"], job
    assert ml.get_jobs(job_id="more")["count"] == 1
    table = es.cat.ml_jobs(format="json", h="id,state,dpr")
    rows = {row["id"]: row for row in body_of(table)}
    assert rows[JOB]["state"] == "closed" and rows[JOB]["data.processed_records"] == str(50 * 18), rows
    text = body_of(es.cat.ml_jobs(v=True, h="id,state"))
    assert text.splitlines()[0].split() == ["id", "state"], text
    assert ml.delete_expired_data()["deleted"] is True
    # All snapshots are recent (the retained one, the close after the refused revert, the last
    # close): all kept. Snapshot ids keep increasing after a revert.
    snaps = ml.get_model_snapshots(job_id=JOB)["model_snapshots"]
    assert len(snaps) == 3, snaps
    assert [s["retain"] for s in snaps].count(True) == 1
    assert len({s["snapshot_id"] for s in snaps}) == 3
    assert snaps[0]["snapshot_id"] == max(s["snapshot_id"] for s in snaps), snaps


@step("filters and calendars")
def _():
    flt = f"py{MAJOR}-safe"
    cal = f"py{MAJOR}-outages"
    for cleanup_call in (lambda: ml.delete_filter(filter_id=flt), lambda: ml.delete_calendar(calendar_id=cal)):
        try:
            cleanup_call()
        except API_ERROR:
            pass
    created = ml.put_filter(filter_id=flt, description="safe", items=["b.org", "a.org", "b.org"])
    assert created["items"] == ["a.org", "b.org"], created
    updated = ml.update_filter(filter_id=flt, add_items=["c.org"], remove_items=["a.org"])
    assert updated["items"] == ["b.org", "c.org"] and updated["description"] == "safe", updated
    assert ml.get_filters(filter_id=flt)["filters"][0]["items"] == ["b.org", "c.org"]
    expect_error(404, "resource_not_found_exception", lambda: ml.get_filters(filter_id="nope"),
                 "No filter with id [nope] exists")
    expect_error(400, "resource_already_exists_exception",
                 lambda: ml.put_filter(filter_id=flt, items=[]))
    assert ml.delete_filter(filter_id=flt)["acknowledged"] is True
    calendar = ml.put_calendar(calendar_id=cal, description="planned", job_ids=[JOB])
    assert calendar["job_ids"] == [JOB], calendar
    added = ml.put_calendar_job(calendar_id=cal, job_id=OTHER)
    assert added["job_ids"] == sorted([JOB, OTHER]), added
    posted = ml.post_calendar_events(calendar_id=cal, events=[
        {"description": "maintenance", "start_time": (START + 60 * HOUR) * 1000, "end_time": (START + 62 * HOUR) * 1000},
        {"description": "upgrade", "start_time": "2014-06-28T00:00:00Z", "end_time": "2014-06-28T04:00:00Z"},
    ])
    assert [e["description"] for e in posted["events"]] == ["maintenance", "upgrade"], posted
    assert posted["events"][1]["start_time"] == 1403913600000
    events = ml.get_calendar_events(calendar_id=cal, job_id=JOB, start=str((START + 61 * HOUR) * 1000))
    assert events["count"] == 2, events
    events = ml.get_calendar_events(calendar_id="_all", end=str((START + 61 * HOUR) * 1000))
    assert [e["description"] for e in events["events"]] == ["maintenance"], events
    first = events["events"][0]["event_id"]
    assert ml.delete_calendar_event(calendar_id=cal, event_id=first)["acknowledged"] is True
    assert ml.get_calendar_events(calendar_id=cal)["count"] == 1
    assert ml.get_calendars(calendar_id=cal)["calendars"][0]["description"] == "planned"
    assert ml.delete_calendar(calendar_id=cal)["acknowledged"] is True
    expect_error(404, "resource_not_found_exception", lambda: ml.get_calendars(calendar_id=cal))


@step("reset, errors, delete")
def _():
    assert ml.reset_job(job_id=JOB)["acknowledged"] is True
    assert ml.get_buckets(job_id=JOB)["count"] == 0
    assert ml.get_model_snapshots(job_id=JOB)["count"] == 0
    expect_error(404, "resource_not_found_exception", lambda: ml.get_jobs(job_id="no-such-job", allow_no_match=False))
    expect_error(409, "status_exception", lambda: ml.flush_job(job_id=JOB), "is not open")
    for job in (JOB, OTHER):
        assert ml.delete_job(job_id=job)["acknowledged"] is True
    assert ml.get_jobs(job_id=f"py{MAJOR}-*")["count"] == 0


print(f"{len(PASSED)} passed, 0 failed")
