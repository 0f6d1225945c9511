use serde_json::json;

use super::*;

fn service() -> Security {
    Security::new(Store::temporary().unwrap(), true).unwrap()
}

fn basic(username: &str, password: &str) -> Credentials {
    Credentials::Basic {
        username: username.into(),
        password: password.into(),
    }
}

fn add_user(security: &Security, name: &str, roles: &[&str]) {
    let change = UserChange::parse(&json!({"password": "password1", "roles": roles})).unwrap();
    assert!(security.put_user(name, change).unwrap());
}

#[test]
fn bootstrap_creates_elastic_once() {
    let security = service();
    let password = security.bootstrap(None).unwrap().expect("first start");
    assert_eq!(password.len(), 20);
    assert_eq!(security.bootstrap(Some("another1")).unwrap(), None);
    let who = security
        .authenticate(&basic(ELASTIC, &password), 0)
        .unwrap();
    assert_eq!(who.effective_roles, ["superuser"]);
    assert!(who.allows("cluster:admin/xpack/security/user/put"));
    // Cached and uncached checks agree, and a wrong password never matches.
    assert!(security.authenticate(&basic(ELASTIC, &password), 0).is_ok());
    assert_eq!(
        security
            .authenticate(&basic(ELASTIC, "wrong"), 0)
            .unwrap_err(),
        AuthnError::User {
            username: ELASTIC.into()
        }
    );
    let stored = String::from_utf8(
        security
            .store
            .get_security(SecurityKind::User, ELASTIC)
            .unwrap()
            .unwrap(),
    )
    .unwrap();
    assert!(!stored.contains(&password) && stored.contains("$argon2id$"));
    assert!(security.bootstrap(None).unwrap().is_none());
    let fixed = service();
    assert_eq!(
        fixed.bootstrap(Some("chosen-pw")).unwrap().as_deref(),
        Some("chosen-pw")
    );
    assert!(service().bootstrap(Some("short")).is_err());
}

#[test]
fn roles_decide_what_a_user_may_do() {
    let security = service();
    add_user(&security, "watcher", &["machine_learning_user"]);
    add_user(&security, "ghost", &["no_such_role"]);
    let watcher = security
        .authenticate(&basic("watcher", "password1"), 0)
        .unwrap();
    assert!(watcher.allows("cluster:monitor/xpack/ml/job/get"));
    assert!(!watcher.allows("cluster:admin/xpack/ml/job/flush"));
    assert_eq!(
        watcher.denial("cluster:admin/xpack/ml/job/flush"),
        "action [cluster:admin/xpack/ml/job/flush] is unauthorized for user [watcher] with \
         effective roles [machine_learning_user], this action is granted by the cluster \
         privileges [manage_ml,manage,all]"
    );
    let ghost = security
        .authenticate(&basic("ghost", "password1"), 0)
        .unwrap();
    assert!(ghost
        .denial("cluster:monitor/main")
        .contains("with effective roles [] (assigned roles [no_such_role] were not found)"));

    let role = RoleDescriptor::parse("flusher", &json!({"cluster": ["manage_ml"]})).unwrap();
    assert!(security.put_role("flusher", &role).unwrap());
    assert!(!security.put_role("flusher", &role).unwrap());
    assert!(security.put_role("superuser", &role).is_err());
    let change = UserChange::parse(&json!({"roles": ["flusher"]})).unwrap();
    assert!(!security.put_user("ghost", change).unwrap());
    let ghost = security
        .authenticate(&basic("ghost", "password1"), 0)
        .unwrap();
    assert!(ghost.allows("cluster:admin/xpack/ml/job/flush"));
    assert!(security.delete_role("flusher").unwrap());
    assert!(!security.delete_role("flusher").unwrap());
    let names: Vec<String> = security
        .roles(None)
        .unwrap()
        .into_iter()
        .map(|r| r.0)
        .collect();
    assert_eq!(names, BUILTIN_ROLES);

    let disabled = UserChange::parse(&json!({"enabled": false})).unwrap();
    security.put_user("watcher", disabled).unwrap();
    assert!(security
        .authenticate(&basic("watcher", "password1"), 0)
        .is_err());
    security.change_password("ghost", "password2").unwrap();
    assert!(security
        .authenticate(&basic("ghost", "password1"), 0)
        .is_err());
    assert!(security
        .authenticate(&basic("ghost", "password2"), 0)
        .is_ok());
    assert!(security.change_password("nobody", "password2").is_err());
}

#[test]
fn api_keys_expire_are_invalidated_and_stay_within_their_owner() {
    let security = service();
    add_user(&security, "admin", &["machine_learning_admin"]);
    let admin = security
        .authenticate(&basic("admin", "password1"), 0)
        .unwrap();
    let request = CreateRequest::parse(&json!({
        "name": "reader", "expiration": "1h",
        "role_descriptors": {"r": {"cluster": ["monitor_ml", "manage_security"]}}
    }))
    .unwrap();
    let (key, secret) = security.create_api_key(&admin, request, 1_000).unwrap();
    assert_eq!(key.expiration, Some(1_000 + 3_600_000));
    let credentials = Credentials::ApiKey {
        id: key.id.clone(),
        key: secret.clone(),
    };
    let by_key = security.authenticate(&credentials, 2_000).unwrap();
    assert!(by_key.allows("cluster:monitor/xpack/ml/job/get"));
    assert!(
        !by_key.allows("cluster:admin/xpack/ml/job/flush"),
        "not in the key"
    );
    assert!(
        !by_key.allows("cluster:admin/xpack/security/user/put"),
        "not the owner's"
    );
    assert!(by_key
        .denial("cluster:admin/xpack/ml/job/flush")
        .starts_with(&format!(
            "action [cluster:admin/xpack/ml/job/flush] is unauthorized for API key id [{}] of user [admin],",
            key.id
        )));
    let wrong = Credentials::ApiKey {
        id: key.id.clone(),
        key: "x".repeat(22),
    };
    assert!(security.authenticate(&wrong, 2_000).is_err());
    assert_eq!(
        security
            .authenticate(&credentials, 1_000 + 3_600_000)
            .unwrap_err(),
        AuthnError::Token {
            detail: "api key is expired".into()
        }
    );
    let all = KeyFilter::default();
    let (now, before) = security.invalidate_api_keys(&all, 3_000).unwrap();
    assert_eq!((now.len(), before.len()), (1, 0));
    assert_eq!(
        security.authenticate(&credentials, 2_000).unwrap_err(),
        AuthnError::Token {
            detail: "api key has been invalidated".into()
        }
    );
    assert_eq!(
        security.invalidate_api_keys(&all, 3_000).unwrap().1.len(),
        1
    );
}

#[test]
fn deleting_a_user_invalidates_its_keys() {
    let security = service();
    add_user(&security, "temp", &["machine_learning_user"]);
    let temp = security
        .authenticate(&basic("temp", "password1"), 0)
        .unwrap();
    let request = CreateRequest::parse(&json!({"name": "k"})).unwrap();
    let (key, _) = security.create_api_key(&temp, request, 0).unwrap();
    assert!(security.delete_user("temp", 5).unwrap());
    assert!(!security.delete_user("temp", 5).unwrap());
    assert!(security.api_key(&key.id).unwrap().unwrap().invalidated);
    assert!(security.delete_user(ELASTIC, 5).is_err());
}

#[test]
fn authorization_headers() {
    assert_eq!(
        Credentials::from_header("Basic ZWxhc3RpYzpwdzp3aXRoOmNvbG9ucw==").unwrap(),
        basic("elastic", "pw:with:colons")
    );
    assert_eq!(
        Credentials::from_header("ApiKey aWQ6a2V5").unwrap(),
        Credentials::ApiKey {
            id: "id".into(),
            key: "key".into()
        }
    );
    for bad in ["Basic", "Basic !!!", "Bearer aWQ6a2V5", "Basic aWRrZXk="] {
        assert!(Credentials::from_header(bad).is_err(), "{bad}");
    }
    let shown = format!("{:?}", basic("u", "topsecret"));
    assert!(!shown.contains("topsecret"));
}

#[test]
fn the_reserved_elastic_user_changes_only_its_password() {
    let security = service();
    let password = security.bootstrap(None).unwrap().unwrap();
    let demote =
        UserChange::parse(&json!({"password": "another1", "roles": ["machine_learning_user"]}))
            .unwrap();
    match security.put_user(ELASTIC, demote) {
        Err(SecurityError::IllegalArgument(reason)) => assert_eq!(
            reason,
            "user [elastic] is reserved and only the password can be changed"
        ),
        other => panic!("expected the reserved-user refusal, got {other:?}"),
    }
    let elastic = security.user(ELASTIC).unwrap().unwrap();
    assert_eq!(elastic.roles, ["superuser"]);
    assert!(security.authenticate(&basic(ELASTIC, &password), 0).is_ok());
    security.change_password(ELASTIC, "another1").unwrap();
    assert!(security
        .authenticate(&basic(ELASTIC, "another1"), 0)
        .is_ok());
    assert_eq!(
        security.user(ELASTIC).unwrap().unwrap().roles,
        ["superuser"]
    );
}

/// After a good login, a wrong password still costs a full argon2 check (before, a cached digest
/// refused it in microseconds: thousands of guesses a second, and a sign the account is in use).
#[test]
fn a_wrong_password_always_costs_a_full_argon2_check() {
    let security = service();
    add_user(&security, "ann", &["machine_learning_user"]);
    let checks = || super::secret::ARGON2_CHECKS.with(|n| n.get());
    let start = checks();
    let good = basic("ann", "password1");
    assert!(security.authenticate(&good, 0).is_ok());
    assert!(security.authenticate(&good, 0).is_ok());
    assert_eq!(
        checks() - start,
        1,
        "the second good login is served by the cache"
    );
    for wrong in ["password2", "password1 ", "PASSWORD1"] {
        let before = checks();
        assert!(security.authenticate(&basic("ann", wrong), 0).is_err());
        assert_eq!(checks() - before, 1, "{wrong:?} was refused without argon2");
    }
    // The cache still holds the good credential, and only that one.
    let before = checks();
    assert!(security.authenticate(&good, 0).is_ok());
    assert_eq!(checks(), before);
    // A changed password voids it.
    security.change_password("ann", "password3").unwrap();
    assert!(security.authenticate(&good, 0).is_err());
}
