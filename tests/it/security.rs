//! Security over HTTP: every endpoint of the router tried by every kind of caller (no
//! credentials, a wrong password, an expired and an invalidated API key, `machine_learning_user`,
//! `machine_learning_admin`, a superuser), with the answers Elasticsearch gives (401 with its
//! challenges, 403 with its wording, or the endpoint's own answer); API keys limited to a subset
//! of their owner's privileges; users, roles and passwords; HTTPS with a generated certificate;
//! the first start's `elastic` password (given or generated, printed once); the audit log.

mod start;

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

use crate::util::{Client, TestServer};

/// What Elasticsearch requires for an endpoint, classified here independently of the server's own
/// table (`../shared/es-api/NOTES.md`): ML reads need `monitor_ml`, other ML calls `manage_ml`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Needs {
    /// `monitor_ml` (or more).
    MonitorMl,
    /// `manage_ml` (or more).
    ManageMl,
    /// `cluster:monitor/main` (`GET /`): `monitor`, which neither ML role has.
    Monitor,
    /// Security administration: only the superuser here.
    Security,
    /// Anyone authenticated (`_authenticate`, one's own password).
    Anyone,
}

fn needs(method: &Method, pattern: &str) -> Needs {
    let read = *method == Method::GET || *method == Method::HEAD;
    if pattern == "/" {
        return Needs::Monitor;
    }
    if pattern == "/_security/_authenticate" || pattern == "/_security/user/_password" {
        return Needs::Anyone;
    }
    if pattern.starts_with("/_security/") {
        return Needs::Security;
    }
    if pattern.starts_with("/_explorer") || pattern.starts_with("/_prometheus") {
        return Needs::MonitorMl;
    }
    if pattern.starts_with("/_auspex/tasks") {
        return Needs::MonitorMl;
    }
    // Reads that Elasticsearch also takes as POST (a body of search parameters).
    let post_reads = [
        "/results/",
        "/model_snapshots",
        "/_ml/calendars",
        "/overall_buckets",
    ];
    let post_read = *method == Method::POST
        && post_reads.iter().any(|p| pattern.contains(p))
        && !pattern.ends_with("/_update")
        && !pattern.ends_with("/_revert")
        && !pattern.ends_with("/_upgrade")
        && !pattern.ends_with("/events");
    if pattern.starts_with("/_ml/filters") || !(read || post_read) {
        return Needs::ManageMl;
    }
    Needs::MonitorMl
}

fn concrete(pattern: &str) -> String {
    pattern
        .split('/')
        .map(|part| match part {
            "{job_id}" => "sec-job",
            "{snapshot_id}" | "{category_id}" => "1",
            "{timestamp}" => "1403481600000",
            "{calendar_id}" => "sec-cal",
            "{event_id}" => "ev",
            "{filter_id}" => "sec-filter",
            "{task_id}" => "replay-1",
            "{asset}" => "app.js",
            "{name}" => "sec_role",
            "{username}" => "sec_user",
            "{forecast_id}" => "fc",
            "{node_id}" => "n1",
            other => other,
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Creates `login` with `roles` and password `password1`.
async fn add_user(admin: &Client, login: &str, roles: &[&str]) {
    let body = json!({"password": "password1", "roles": roles});
    let reply = admin
        .put_json(&format!("/_security/user/{login}"), &body)
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.json()["created"], true);
}

/// Creates an API key as `owner`; returns its `encoded` credentials.
async fn api_key(owner: &Client, body: Value) -> (String, String) {
    let reply = owner.post_json("/_security/api_key", &body).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let created = reply.json();
    (
        created["id"].as_str().expect("id").to_string(),
        created["encoded"].as_str().expect("encoded").to_string(),
    )
}

/// One request to a route: no body for reads, `{}` otherwise.
async fn try_route(client: Client, method: Method, path: String) -> crate::util::Reply {
    let request = client.request(method.clone(), &path);
    let request = if method == Method::GET || method == Method::HEAD {
        request
    } else {
        request.json(&json!({}))
    };
    client.send(request).await
}

fn assert_401(reply: &crate::util::Reply, what: &str) {
    assert_eq!(reply.status, 401, "{what}: {}", reply.text());
    let challenges: Vec<&str> = reply
        .headers
        .get_all("www-authenticate")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    assert_eq!(
        challenges,
        ["Basic realm=\"security\", charset=\"UTF-8\"", "ApiKey"],
        "{what}"
    );
    if !reply.body.is_empty() {
        assert_eq!(reply.es_error().0, "security_exception", "{what}");
    }
}

#[tokio::test]
async fn every_endpoint_answers_each_caller_as_elasticsearch_would() {
    let server = TestServer::start_secured().await;
    let admin = server.client.clone();
    add_user(&admin, "ml_user", &["machine_learning_user"]).await;
    add_user(&admin, "ml_admin", &["machine_learning_admin"]).await;
    let (_, expiring) = api_key(&admin, json!({"name": "short", "expiration": "1ms"})).await;
    let (_, invalidated) = api_key(&admin, json!({"name": "gone"})).await;
    let reply = admin
        .send(
            admin
                .request(Method::DELETE, "/_security/api_key")
                .json(&json!({"name": "gone"})),
        )
        .await;
    assert_eq!(
        reply.json()["invalidated_api_keys"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    tokio::time::sleep(Duration::from_millis(20)).await;

    let anonymous = admin.anonymous();
    let wrong = admin.as_user("ml_admin", "not-the-password");
    let expired = admin.with_api_key(&expiring);
    let invalid = admin.with_api_key(&invalidated);
    let ml_user = admin.as_user("ml_user", "password1");
    let ml_admin = admin.as_user("ml_admin", "password1");

    let routes = auspex::api::route::routes();
    assert!(routes.len() > 70, "only {} routes", routes.len());
    let mut checked = 0;
    for (method, pattern) in routes {
        let path = concrete(pattern);
        let what = format!("{method} {pattern}");
        let send = |client: &Client| try_route(client.clone(), method.clone(), path.clone());
        for (label, client) in [
            ("no credentials", &anonymous),
            ("wrong password", &wrong),
            ("expired API key", &expired),
            ("invalidated API key", &invalid),
        ] {
            assert_401(&send(client).await, &format!("{what} with {label}"));
        }
        let needed = needs(&method, pattern);
        for (user, roles, allowed) in [
            (
                "ml_user",
                &ml_user,
                matches!(needed, Needs::MonitorMl | Needs::Anyone),
            ),
            (
                "ml_admin",
                &ml_admin,
                matches!(needed, Needs::MonitorMl | Needs::ManageMl | Needs::Anyone),
            ),
        ] {
            let reply = send(roles).await;
            if allowed {
                assert!(
                    ![401, 403].contains(&reply.status),
                    "{what} as {user}: {} {}",
                    reply.status,
                    reply.text()
                );
                continue;
            }
            assert_eq!(reply.status, 403, "{what} as {user}: {}", reply.text());
            if method == Method::HEAD {
                continue;
            }
            let (kind, reason) = reply.es_error();
            assert_eq!(kind, "security_exception");
            let role = if user == "ml_user" {
                "machine_learning_user"
            } else {
                "machine_learning_admin"
            };
            let granted_by = match needed {
                Needs::ManageMl => "[manage_ml,manage,all]",
                Needs::Monitor => "[monitor,manage,all]",
                _ => ",all]",
            };
            assert!(
                reason.starts_with("action [cluster:")
                    && reason.contains(&format!(
                        "] is unauthorized for user [{user}] with effective roles [{role}], this \
                         action is granted by the cluster privileges ["
                    ))
                    && reason.ends_with(granted_by),
                "{what} as {user}: {reason}"
            );
        }
        let reply = send(&admin).await;
        assert!(
            ![401, 403].contains(&reply.status),
            "{what} as superuser: {} {}",
            reply.status,
            reply.text()
        );
        checked += 1;
    }
    eprintln!("security matrix: {checked} routes x 7 callers");
    // The flush example of the issue, word for word.
    let reply = ml_user.post("/_ml/anomaly_detectors/sec-job/_flush").await;
    assert_eq!(
        reply.es_error().1,
        "action [cluster:admin/xpack/ml/job/flush] is unauthorized for user [ml_user] with \
         effective roles [machine_learning_user], this action is granted by the cluster \
         privileges [manage_ml,manage,all]"
    );
    let reply = anonymous.get("/_ml/anomaly_detectors?pretty").await;
    assert_eq!(
        reply.es_error().1,
        "missing authentication credentials for REST request [/_ml/anomaly_detectors?pretty]"
    );
    let reply = wrong.get("/_ml/info").await;
    assert_eq!(
        reply.es_error().1,
        "unable to authenticate user [ml_admin] for REST request [/_ml/info]"
    );
    let reply = expired.get("/_ml/info").await;
    assert_eq!(
        reply.json()["error"]["additional_unsuccessful_credentials"],
        "API key: api key is expired"
    );
    server.stop().await;
}

#[tokio::test]
async fn api_keys_never_exceed_their_owner_and_see_only_their_own_keys() {
    let server = TestServer::start_secured().await;
    let admin = server.client.clone();
    let role = json!({"cluster": ["manage_ml", "manage_own_api_key"]});
    let reply = admin.put_json("/_security/role/ml_keys", &role).await;
    assert_eq!(reply.json(), json!({"role": {"created": true}}));
    add_user(&admin, "owner", &["ml_keys"]).await;
    let owner = admin.as_user("owner", "password1");

    // Asks for more than the owner has: the key keeps only the overlap (monitor_ml).
    let (key_id, encoded) = api_key(
        &owner,
        json!({"name": "reader", "role_descriptors": {
            "r": {"cluster": ["monitor_ml", "manage_security"]}
        }}),
    )
    .await;
    let key = admin.with_api_key(&encoded);
    let job = json!({
        "analysis_config": {"bucket_span": "1h", "detectors": [{"function": "count"}]},
        "data_description": {"time_field": "t"}
    });
    assert_eq!(
        owner
            .put_json("/_ml/anomaly_detectors/k1", &job)
            .await
            .status,
        200
    );
    assert_eq!(key.get("/_ml/anomaly_detectors/k1").await.status, 200);
    let reply = key.put_json("/_ml/anomaly_detectors/k2", &job).await;
    assert_eq!(reply.status, 403);
    assert!(reply.es_error().1.starts_with(&format!(
        "action [cluster:admin/xpack/ml/job/put] is unauthorized for API key id [{key_id}] of user [owner]"
    )));
    let reply = key.get("/_security/user").await;
    assert_eq!(reply.status, 403, "manage_security is not the owner's");
    let who = key.get("/_security/_authenticate").await.json();
    assert_eq!(who["authentication_type"], "api_key");
    assert_eq!(who["api_key"]["id"], key_id.as_str());
    assert_eq!(who["username"], "owner");

    // No descriptors: the key can do what the owner could at creation.
    let (_, full) = api_key(&owner, json!({"name": "writer"})).await;
    let writer = admin.with_api_key(&full);
    assert_eq!(
        writer
            .put_json("/_ml/anomaly_detectors/k3", &job)
            .await
            .status,
        200
    );
    assert_eq!(writer.get("/").await.status, 403, "no monitor privilege");

    // manage_own_api_key: own keys only.
    let (admins_key, _) = api_key(&admin, json!({"name": "admins"})).await;
    assert_eq!(owner.get("/_security/api_key").await.status, 403);
    let mine = owner.get("/_security/api_key?owner=true").await.json();
    let names: Vec<&str> = mine["api_keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["reader", "writer"]);
    let everyone = admin.get("/_security/api_key").await.json();
    assert_eq!(everyone["api_keys"].as_array().unwrap().len(), 3);
    let steal = owner
        .send(
            owner
                .request(Method::DELETE, "/_security/api_key")
                .json(&json!({"ids": [admins_key]})),
        )
        .await;
    assert_eq!(steal.status, 403);
    let own = owner
        .send(
            owner
                .request(Method::DELETE, "/_security/api_key")
                .json(&json!({"owner": true})),
        )
        .await;
    assert_eq!(
        own.json()["invalidated_api_keys"].as_array().unwrap().len(),
        2
    );
    assert_eq!(key.get("/_ml/anomaly_detectors/k1").await.status, 401);
    server.stop().await;
}

#[tokio::test]
async fn users_roles_and_passwords() {
    let server = TestServer::start_secured().await;
    let admin = server.client.clone();
    add_user(&admin, "ann", &["machine_learning_admin"]).await;
    let ann = admin.as_user("ann", "password1");
    let users = admin.get("/_security/user/ann").await.json();
    assert_eq!(users["ann"]["roles"], json!(["machine_learning_admin"]));
    assert!(users["ann"].get("password").is_none() && users["ann"].get("password_hash").is_none());
    assert_eq!(admin.get("/_security/user/nobody").await.status, 404);
    let all = admin.get("/_security/user").await.json();
    assert!(all.get("elastic").is_some() && all.get("ann").is_some());

    // A user changes its own password; the old one stops working at once.
    let reply = ann
        .put_json(
            "/_security/user/_password",
            &json!({"password": "password2"}),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(ann.get("/_ml/info").await.status, 401);
    let ann = admin.as_user("ann", "password2");
    assert_eq!(ann.get("/_ml/info").await.status, 200);
    // ... but not someone else's.
    let reply = ann
        .put_json(
            "/_security/user/elastic/_password",
            &json!({"password": "hijacked"}),
        )
        .await;
    assert_eq!(reply.status, 403);
    let short = admin
        .put_json("/_security/user/ann/_password", &json!({"password": "abc"}))
        .await;
    assert_eq!(short.status, 400);

    let reply = admin
        .put_json("/_security/role/bad", &json!({"cluster": ["fly"]}))
        .await;
    assert_eq!(reply.status, 400);
    assert!(reply
        .es_error()
        .1
        .contains("unknown cluster privilege [fly]"));
    let builtin = admin
        .get("/_security/role/machine_learning_user")
        .await
        .json();
    assert_eq!(
        builtin["machine_learning_user"]["cluster"],
        json!(["monitor_ml"])
    );
    let reply = admin.delete("/_security/role/superuser").await;
    assert_eq!(reply.status, 400);
    let reply = admin.delete("/_security/user/elastic").await;
    assert_eq!(reply.status, 400);
    assert!(reply.es_error().1.contains("reserved"));

    // machine_learning_admin holds no API key privilege.
    let reply = ann
        .post_json("/_security/api_key", &json!({"name": "anns"}))
        .await;
    assert_eq!(reply.status, 403);

    // Deleting a user invalidates its API keys with it.
    let role = json!({"cluster": ["monitor_ml", "manage_own_api_key"]});
    assert_eq!(
        admin.put_json("/_security/role/keyed", &role).await.status,
        200
    );
    add_user(&admin, "kim", &["keyed"]).await;
    let kim = admin.as_user("kim", "password1");
    let (_, encoded) = api_key(&kim, json!({"name": "kims"})).await;
    let kims_key = admin.with_api_key(&encoded);
    assert_eq!(kims_key.get("/_ml/info").await.status, 200);
    let reply = admin.delete("/_security/user/kim").await;
    assert_eq!(reply.json(), json!({"found": true}));
    assert_eq!(kims_key.get("/_ml/info").await.status, 401);
    assert_eq!(kim.get("/_ml/info").await.status, 401);
    assert_eq!(admin.delete("/_security/user/kim").await.status, 404);
    server.stop().await;
}

/// Issue 24 section 5: `PUT _security/user/elastic` with other roles answered `{"created":false}`
/// and left the store without a superuser. Elasticsearch refuses it; only `_password` changes it.
#[tokio::test]
async fn the_reserved_elastic_user_cannot_be_demoted() {
    let server = TestServer::start_secured().await;
    let admin = server.client.clone();
    let reply = admin
        .put_json(
            "/_security/user/elastic",
            &json!({"password": "another-pw", "roles": ["machine_learning_user"]}),
        )
        .await;
    assert_eq!(reply.status, 400, "{}", reply.text());
    assert_eq!(
        reply.es_error(),
        (
            "illegal_argument_exception".to_string(),
            "user [elastic] is reserved and only the password can be changed".to_string()
        )
    );
    let elastic = admin.get("/_security/user/elastic").await.json();
    assert_eq!(elastic["elastic"]["roles"], json!(["superuser"]));
    assert_eq!(
        admin.get("/_ml/info").await.status,
        200,
        "the old password still works"
    );
    let reply = admin
        .put_json(
            "/_security/user/elastic/_password",
            &json!({"password": "another-pw"}),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let renewed = admin.as_user("elastic", "another-pw");
    assert_eq!(renewed.get("/_security/user/ann").await.status, 404);
    server.stop().await;
}

/// Issue 24 section 4: nothing limited guessing. After the free failures, each further attempt
/// for the user waits (250 ms, then doubling), the correct password too while the window runs;
/// once it has passed, the legitimate user is in at once.
#[tokio::test]
async fn repeated_login_failures_are_slowed_and_the_window_forgets_them() {
    let server = TestServer::start_with_security(|config| {
        config.security.login = auspex::security::LoginThrottle {
            free_failures: 3,
            window: Duration::from_millis(2500),
            max_delay: Duration::from_secs(2),
        };
    })
    .await;
    let admin = server.client.clone();
    add_user(&admin, "ann", &["machine_learning_user"]).await;
    let wrong = admin.as_user("ann", "not-her-password");
    let right = admin.as_user("ann", "password1");
    let timed = |client: Client| async move {
        let started = std::time::Instant::now();
        let status = client.get("/_ml/info").await.status;
        (status, started.elapsed())
    };
    for _ in 0..3 {
        assert_eq!(timed(wrong.clone()).await.0, 401);
    }
    // 4th failure: it waited 250 ms first; the 5th waits 500 ms after it.
    let (status, took) = timed(wrong.clone()).await;
    assert_eq!(status, 401);
    assert!(
        took >= Duration::from_millis(240),
        "4th attempt took {took:?}"
    );
    let (status, took) = timed(right.clone()).await;
    assert_eq!(status, 200, "the right password gets in, after its turn");
    assert!(
        took >= Duration::from_millis(480),
        "5th attempt took {took:?}"
    );
    // Its success cleared the user's count; failures start from zero again.
    assert!(timed(wrong.clone()).await.1 < Duration::from_millis(240));
    for _ in 0..3 {
        timed(wrong.clone()).await;
    }
    tokio::time::sleep(Duration::from_millis(2600)).await;
    let (status, took) = timed(right).await;
    assert_eq!(status, 200);
    assert!(
        took < Duration::from_millis(240),
        "after the window: {took:?}"
    );
    server.stop().await;
}
