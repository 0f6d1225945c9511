//! Cluster privileges: which Elasticsearch action names each named privilege grants, and the
//! privileges that would grant a denied action (the end of a 403 message).
//!
//! Action names are Elasticsearch's (`cluster:admin/xpack/ml/job/flush`, ...); patterns end in `*`
//! for a prefix. A role may also name an action pattern instead of a privilege, as in
//! Elasticsearch (`cluster:monitor/xpack/ml/job/get` grants that action and its sub-actions).

/// A named cluster privilege: the action patterns it grants minus those it excludes, and its
/// rank among the others (Elasticsearch lists granting privileges least powerful first; the rank
/// is how many of the other named privileges this one implies there).
struct Named {
    name: &'static str,
    grants: &'static [&'static str],
    excludes: &'static [&'static str],
    rank: u8,
}

const SECURITY_ACTIONS: &str = "cluster:admin/xpack/security/*";

/// Every named cluster privilege auspex knows; the names and meanings are Elasticsearch's.
const NAMED: &[Named] = &[
    Named {
        name: "none",
        grants: &[],
        excludes: &[],
        rank: 0,
    },
    Named {
        name: "all",
        grants: &["cluster:*"],
        excludes: &[],
        rank: 100,
    },
    Named {
        name: "monitor",
        grants: &["cluster:monitor/*"],
        excludes: &[],
        rank: 8,
    },
    Named {
        name: "monitor_ml",
        grants: &["cluster:monitor/xpack/ml/*"],
        excludes: &[],
        rank: 1,
    },
    Named {
        name: "manage",
        grants: &["cluster:*"],
        excludes: &[SECURITY_ACTIONS],
        rank: 40,
    },
    Named {
        name: "manage_ml",
        grants: &["cluster:admin/xpack/ml/*", "cluster:monitor/xpack/ml/*"],
        excludes: &[],
        rank: 2,
    },
    Named {
        name: "manage_security",
        grants: &[SECURITY_ACTIONS],
        excludes: &[],
        rank: 20,
    },
    Named {
        name: "read_security",
        grants: &[action::GET_API_KEY, action::GET_ROLES, action::GET_USERS],
        excludes: &[],
        rank: 1,
    },
    Named {
        name: "manage_api_key",
        grants: &["cluster:admin/xpack/security/api_key/*"],
        excludes: &[],
        rank: 3,
    },
    // Grants the API key actions on the caller's own keys only: the handlers restrict a request
    // that holds no broader privilege to the keys its user owns.
    Named {
        name: "manage_own_api_key",
        grants: &["cluster:admin/xpack/security/api_key/*"],
        excludes: &[],
        rank: 1,
    },
];

/// The privileges that reach beyond the caller's own API keys.
const ALL_API_KEYS: [&str; 4] = ["manage_api_key", "manage_security", "all", "cluster:*"];

/// Elasticsearch action names of the security API (the ML ones are next to the endpoints, in
/// `api::route`).
pub mod action {
    pub const AUTHENTICATE: &str = "cluster:admin/xpack/security/user/authenticate";
    pub const CREATE_API_KEY: &str = "cluster:admin/xpack/security/api_key/create";
    pub const GET_API_KEY: &str = "cluster:admin/xpack/security/api_key/get";
    pub const INVALIDATE_API_KEY: &str = "cluster:admin/xpack/security/api_key/invalidate";
    pub const PUT_ROLE: &str = "cluster:admin/xpack/security/role/put";
    pub const GET_ROLES: &str = "cluster:admin/xpack/security/role/get";
    pub const DELETE_ROLE: &str = "cluster:admin/xpack/security/role/delete";
    pub const PUT_USER: &str = "cluster:admin/xpack/security/user/put";
    pub const GET_USERS: &str = "cluster:admin/xpack/security/user/get";
    pub const DELETE_USER: &str = "cluster:admin/xpack/security/user/delete";
    pub const CHANGE_PASSWORD: &str = "cluster:admin/xpack/security/user/change_password";
}

fn pattern_matches(pattern: &str, action: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => action.starts_with(prefix),
        None => pattern == action,
    }
}

/// Whether `name` is a cluster privilege a role may hold: a named one, or a cluster action
/// (pattern).
pub fn is_valid(name: &str) -> bool {
    NAMED.iter().any(|p| p.name == name) || name.starts_with("cluster:")
}

/// The error for a role naming an unknown privilege (Elasticsearch's wording).
pub fn unknown_message(name: &str) -> String {
    let names: Vec<&str> = NAMED.iter().map(|p| p.name).collect();
    format!(
        "unknown cluster privilege [{name}]. a privilege must be either one of the predefined \
         cluster privilege names [{}] or a pattern over one of the available cluster actions",
        names.join(",")
    )
}

/// Whether the privilege `name` grants `action`.
pub fn grants(name: &str, action: &str) -> bool {
    match NAMED.iter().find(|p| p.name == name) {
        Some(named) => {
            named.grants.iter().any(|p| pattern_matches(p, action))
                && !named.excludes.iter().any(|p| pattern_matches(p, action))
        }
        // A cluster action names itself and its sub-actions.
        None if name.starts_with("cluster:") => {
            action == name || pattern_matches(&format!("{name}*"), action)
        }
        None => false,
    }
}

/// Whether any of `privileges` grants `action`.
pub fn any_grants<'a>(privileges: impl IntoIterator<Item = &'a str>, action: &str) -> bool {
    privileges.into_iter().any(|p| grants(p, action))
}

/// Whether `privileges` reach every user's API keys, not just the caller's own.
pub fn manages_all_api_keys<'a>(privileges: impl IntoIterator<Item = &'a str>) -> bool {
    privileges
        .into_iter()
        .any(|p| ALL_API_KEYS.contains(&p) || p == "cluster:admin/xpack/security/api_key/*")
}

/// The named privileges that grant `action`, least powerful first (ties by name), as
/// Elasticsearch lists them: `[manage_ml,manage,all]` for a flush.
pub fn granting(action: &str) -> Vec<&'static str> {
    let mut found: Vec<&Named> = NAMED.iter().filter(|p| grants(p.name, action)).collect();
    found.sort_by(|a, b| a.rank.cmp(&b.rank).then(a.name.cmp(b.name)));
    found.into_iter().map(|p| p.name).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ml_reads_and_writes_are_granted_as_in_elasticsearch() {
        assert_eq!(
            granting("cluster:admin/xpack/ml/job/flush"),
            ["manage_ml", "manage", "all"]
        );
        assert_eq!(
            granting("cluster:monitor/xpack/ml/job/get"),
            ["monitor_ml", "manage_ml", "monitor", "manage", "all"]
        );
        assert_eq!(
            granting("cluster:monitor/main"),
            ["monitor", "manage", "all"]
        );
        assert_eq!(
            granting(action::GET_USERS),
            ["read_security", "manage_security", "all"]
        );
        assert_eq!(granting(action::PUT_USER), ["manage_security", "all"]);
        assert_eq!(
            granting(action::CREATE_API_KEY),
            [
                "manage_own_api_key",
                "manage_api_key",
                "manage_security",
                "all"
            ]
        );
    }

    #[test]
    fn manage_excludes_security_and_actions_name_themselves() {
        assert!(grants("manage", "cluster:admin/xpack/ml/job/put"));
        assert!(!grants("manage", action::PUT_USER));
        assert!(!grants("monitor_ml", "cluster:admin/xpack/ml/job/put"));
        assert!(grants(
            "cluster:monitor/xpack/ml/job/get",
            "cluster:monitor/xpack/ml/job/get"
        ));
        assert!(!grants(
            "cluster:monitor/xpack/ml/job/get",
            "cluster:monitor/xpack/ml/job/stats/get"
        ));
        assert!(!grants("bogus", "cluster:monitor/main"));
        assert!(is_valid("monitor_ml") && is_valid("cluster:monitor/*") && !is_valid("bogus"));
        assert!(unknown_message("bogus").contains("[bogus]"));
        assert!(manages_all_api_keys(["manage_security"]));
        assert!(!manages_all_api_keys(["manage_own_api_key", "manage"]));
    }
}
