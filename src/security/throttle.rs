//! Login throttling: repeated authentication failures for one user, or from one client address,
//! slow every further attempt for that user or address down.
//!
//! Each key (a username, a client address) counts its failures in a sliding window. Up to
//! `free_failures` of them cost nothing extra. Beyond that, attempts are spaced out: each one
//! reserves the key's next slot, `delay = base * 2^(failures - free_failures)` (capped at
//! `max_delay`) after the previous one, and waits for it before its credentials are even looked
//! at, so parallel guesses queue up instead of running side by side. An attempt whose slot lies
//! more than `max_delay` ahead is refused at once without a check (the key is flooded). A
//! success clears its keys; failures older than the window are forgotten, so the legitimate user
//! gets in once the window has passed after the last failure.
//!
//! Owns the bookkeeping only (in memory, per process); `Security::authenticate_throttled` waits
//! and checks, and writes the audit lines.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The settings (`security.login_*` in the config).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginThrottle {
    /// Failures within the window before attempts are delayed.
    pub free_failures: u32,
    /// How long a failure counts.
    pub window: Duration,
    /// The longest delay, and how far ahead an attempt may be queued.
    pub max_delay: Duration,
}

impl Default for LoginThrottle {
    fn default() -> LoginThrottle {
        LoginThrottle {
            free_failures: 5,
            window: Duration::from_secs(300),
            max_delay: Duration::from_secs(30),
        }
    }
}

/// The first delay once the free failures are used up; it doubles with each failure after.
const BASE_DELAY: Duration = Duration::from_millis(250);
/// Keys tracked at most; beyond this the ones whose last failure is oldest are forgotten, so a
/// flood of made-up usernames cannot grow memory without bound.
const MAX_KEYS: usize = 100_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Key<'a> {
    User(&'a str),
    Address(std::net::IpAddr),
}

#[derive(Debug)]
struct Failures {
    count: u32,
    last: Instant,
    /// When the next delayed attempt may run.
    next_slot: Instant,
}

/// What an attempt must do before it is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Go ahead at once.
    Now,
    /// Wait until then (`failures` is the highest count among the keys, for the audit line).
    At { at: Instant, failures: u32 },
    /// Refused unchecked: the key's queue reaches beyond the longest delay.
    Flooded { failures: u32 },
}

pub struct Throttle {
    settings: LoginThrottle,
    keys: Mutex<HashMap<OwnedKey, Failures>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum OwnedKey {
    User(String),
    Address(std::net::IpAddr),
}

impl From<Key<'_>> for OwnedKey {
    fn from(key: Key<'_>) -> OwnedKey {
        match key {
            Key::User(name) => OwnedKey::User(name.to_owned()),
            Key::Address(address) => OwnedKey::Address(address),
        }
    }
}

impl Throttle {
    pub fn new(settings: LoginThrottle) -> Throttle {
        Throttle {
            settings,
            keys: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<OwnedKey, Failures>> {
        // Counters only: a panic elsewhere leaves nothing half-changed that matters.
        self.keys.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn delay(&self, failures: u32) -> Duration {
        let over = failures.saturating_sub(self.settings.free_failures).min(30);
        BASE_DELAY
            .saturating_mul(1u32 << over)
            .min(self.settings.max_delay)
    }

    /// Reserves the attempt's slot for every key that is over its free failures.
    pub fn admit(&self, keys: &[Key<'_>], now: Instant) -> Admission {
        let mut map = self.lock();
        let mut admission = Admission::Now;
        for key in keys {
            let Some(entry) = map.get_mut(&OwnedKey::from(*key)) else {
                continue;
            };
            if now.duration_since(entry.last) > self.settings.window {
                continue;
            }
            if entry.count < self.settings.free_failures {
                continue;
            }
            let at = entry.next_slot.max(now);
            if at.duration_since(now) > self.settings.max_delay {
                return Admission::Flooded {
                    failures: entry.count,
                };
            }
            entry.next_slot = at + self.delay(entry.count);
            admission = match admission {
                Admission::At {
                    at: other,
                    failures,
                } => Admission::At {
                    at: at.max(other),
                    failures: failures.max(entry.count),
                },
                _ => Admission::At {
                    at,
                    failures: entry.count,
                },
            };
        }
        admission
    }

    /// Records how an attempt ended.
    pub fn record(&self, keys: &[Key<'_>], succeeded: bool, now: Instant) {
        let mut map = self.lock();
        for key in keys {
            let key = OwnedKey::from(*key);
            if succeeded {
                map.remove(&key);
                continue;
            }
            let entry = map.entry(key).or_insert(Failures {
                count: 0,
                last: now,
                next_slot: now,
            });
            if now.duration_since(entry.last) > self.settings.window {
                entry.count = 0;
                entry.next_slot = now;
            }
            entry.count = entry.count.saturating_add(1);
            entry.last = now;
            if entry.count >= self.settings.free_failures {
                // The next attempt waits a full (grown) delay after this failure.
                entry.next_slot = entry.next_slot.max(now + self.delay(entry.count));
            }
        }
        if map.len() > MAX_KEYS {
            let window = self.settings.window;
            map.retain(|_, entry| now.duration_since(entry.last) <= window);
            if map.len() > MAX_KEYS {
                map.clear();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn throttle() -> Throttle {
        Throttle::new(LoginThrottle {
            free_failures: 3,
            window: Duration::from_secs(60),
            max_delay: Duration::from_secs(4),
        })
    }

    #[test]
    fn delays_start_after_the_free_failures_and_double() {
        let t = throttle();
        let start = Instant::now();
        let user = [Key::User("ann")];
        for _ in 0..3 {
            assert_eq!(t.admit(&user, start), Admission::Now);
            t.record(&user, false, start);
        }
        // Three failures: the next attempt waits 250 ms; after a fourth, 500 ms; and so on.
        let Admission::At { at, failures: 3 } = t.admit(&user, start) else {
            panic!("expected a delay")
        };
        assert_eq!(at - start, Duration::from_millis(250));
        t.record(&user, false, at);
        let Admission::At { at: next, .. } = t.admit(&user, at) else {
            panic!("expected a delay")
        };
        assert_eq!(next - at, Duration::from_millis(500));
        // Another user and an unrelated address are not slowed.
        assert_eq!(t.admit(&[Key::User("bob")], start), Admission::Now);
    }

    #[test]
    fn parallel_attempts_queue_up_and_a_flood_is_refused() {
        let t = throttle();
        let now = Instant::now();
        let address = [Key::Address([10, 0, 0, 1].into())];
        for _ in 0..3 {
            t.record(&address, false, now);
        }
        let mut slots = Vec::new();
        loop {
            match t.admit(&address, now) {
                Admission::At { at, .. } => slots.push(at),
                Admission::Flooded { failures } => {
                    assert_eq!(failures, 3);
                    break;
                }
                Admission::Now => panic!("a throttled key is never admitted at once"),
            }
        }
        // 250 ms apart, up to the 4 s cap.
        assert_eq!(slots.len(), 16);
        assert!(slots
            .windows(2)
            .all(|w| w[1] - w[0] == Duration::from_millis(250)));
    }

    #[test]
    fn success_clears_and_the_window_forgets() {
        let t = throttle();
        let now = Instant::now();
        let keys = [Key::User("ann"), Key::Address([10, 0, 0, 2].into())];
        for _ in 0..5 {
            t.record(&keys, false, now);
        }
        assert!(matches!(t.admit(&keys, now), Admission::At { .. }));
        // After the window, the legitimate user is in at once.
        let later = now + Duration::from_secs(61);
        assert_eq!(t.admit(&keys, later), Admission::Now);
        t.record(&keys, false, now);
        t.record(&keys, true, now);
        assert_eq!(t.admit(&keys, now), Admission::Now);
    }
}
