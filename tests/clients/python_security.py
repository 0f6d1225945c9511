"""The official Python client against a secured auspex: basic auth, API keys, 401 and 403.

Usage: python python_security.py https_or_http://127.0.0.1:PORT ELASTIC_PASSWORD

Works with the `elasticsearch` package 7.17.x, 8.x and 9.x (7.x spells basic auth `http_auth=` and
bodies `body=`). Connects as `elastic` with basic auth, creates a `machine_learning_admin` user and an
API key limited to ML monitoring, then runs a small job through a client authenticated by each and
checks the refusals Elasticsearch would give. Prints `N passed, 0 failed` when every step passes.
"""

import sys
import warnings

import elasticsearch

MAJOR = int(elasticsearch.__versionstr__.split(".")[0])
URL, PASSWORD = sys.argv[1], sys.argv[2]
JOB = f"sec-py{MAJOR}"
START = 1403481600
PASSED = []
API_ERROR = elasticsearch.ApiError if MAJOR >= 8 else elasticsearch.TransportError
# 7.x warns when its product check (GET /) is refused for lack of privileges; that is expected.
warnings.simplefilter("ignore")


def step(name):
    def wrap(fn):
        fn()
        PASSED.append(name)
        print(f"ok {len(PASSED)} - {name}", flush=True)
        return fn

    return wrap


def body_of(response):
    return getattr(response, "body", response)


def client(basic=None, api_key=None):
    auth = {}
    if basic:
        auth["basic_auth" if MAJOR >= 8 else "http_auth"] = basic
    if api_key:
        auth["api_key"] = api_key
    if MAJOR >= 8:
        return elasticsearch.Elasticsearch(URL, request_timeout=60, **auth)
    return elasticsearch.Elasticsearch([URL], timeout=60, **auth)


def call(fn, **kw):
    """8.x keyword style; 7.x takes JSON bodies as body=."""
    body = kw.pop("body7", None)
    if MAJOR < 8 and body is not None:
        kw["body"] = body
    return body_of(fn(**kw))


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
        return
    raise AssertionError(f"expected a {status} {error_type}")


elastic = client(basic=("elastic", PASSWORD))
JOB_BODY = {
    "analysis_config": {"bucket_span": "1h", "detectors": [{"function": "count"}]},
    "data_description": {"time_field": "time", "time_format": "epoch"},
}
state = {}


@step("basic auth: authenticate as elastic")
def _():
    who = body_of(elastic.security.authenticate())
    assert who["username"] == "elastic", who
    assert who["roles"] == ["superuser"], who


@step("wrong password and no credentials are 401")
def _():
    bad = client(basic=("elastic", "not-the-password"))
    expect_error(401, "security_exception", lambda: bad.ml.get_jobs(), "unable to authenticate user [elastic]")
    anonymous = client()
    expect_error(401, "security_exception", lambda: anonymous.ml.get_jobs(), "missing authentication credentials")


@step("create a machine_learning_admin user")
def _():
    user = {"password": "ml-admin-pw", "roles": ["machine_learning_admin"]}
    if MAJOR >= 8:
        created = body_of(elastic.security.put_user(username="py-ml-admin", **user))
    else:
        created = body_of(elastic.security.put_user(username="py-ml-admin", body=user))
    assert "created" in created, created


@step("the ML admin runs a job with basic auth")
def _():
    admin = client(basic=("py-ml-admin", "ml-admin-pw"))
    call(admin.ml.put_job, job_id=JOB, body7=JOB_BODY, **({} if MAJOR < 8 else JOB_BODY))
    assert body_of(admin.ml.open_job(job_id=JOB))["opened"] is True
    docs = [{"time": START + i * 600} for i in range(12)]
    if MAJOR >= 8:
        admin.ml.post_data(job_id=JOB, data=docs)
    else:
        admin.ml.post_data(job_id=JOB, body=docs)
    flushed = body_of(admin.ml.flush_job(job_id=JOB))
    assert flushed["flushed"] is True, flushed
    expect_error(403, "security_exception", lambda: admin.security.get_user(username="elastic"),
                 "is unauthorized for user [py-ml-admin] with effective roles [machine_learning_admin]")


@step("create an API key limited to ML monitoring")
def _():
    key = {"name": f"py{MAJOR}-reader", "expiration": "1d",
           "role_descriptors": {"reader": {"cluster": ["monitor_ml"]}}}
    if MAJOR >= 8:
        created = body_of(elastic.security.create_api_key(**key))
    else:
        created = body_of(elastic.security.create_api_key(body=key))
    assert created["name"] == key["name"] and created["expiration"] > 0, created
    state["key"] = (created["id"], created["api_key"])


@step("the API key reads but cannot write")
def _():
    reader = client(api_key=state["key"])
    jobs = body_of(reader.ml.get_jobs(job_id=JOB))
    assert jobs["count"] == 1, jobs
    stats = body_of(reader.ml.get_job_stats(job_id=JOB))
    assert stats["jobs"][0]["data_counts"]["processed_record_count"] == 12, stats
    expect_error(403, "security_exception", lambda: reader.ml.close_job(job_id=JOB),
                 "action [cluster:admin/xpack/ml/job/close] is unauthorized for API key id ["
                 f"{state['key'][0]}] of user [elastic], this action is granted by the cluster privileges "
                 "[manage_ml,manage,all]")


@step("an invalidated API key is 401")
def _():
    if MAJOR >= 8:
        done = body_of(elastic.security.invalidate_api_key(ids=[state["key"][0]]))
    else:
        done = body_of(elastic.security.invalidate_api_key(body={"ids": [state["key"][0]]}))
    assert done["invalidated_api_keys"] == [state["key"][0]], done
    reader = client(api_key=state["key"])
    expect_error(401, "security_exception", lambda: reader.ml.get_jobs(job_id=JOB))


@step("clean up")
def _():
    assert body_of(elastic.ml.close_job(job_id=JOB))["closed"] is True
    assert body_of(elastic.ml.delete_job(job_id=JOB))["acknowledged"] is True
    assert body_of(elastic.security.delete_user(username="py-ml-admin"))["found"] is True


print(f"{len(PASSED)} passed, 0 failed")
