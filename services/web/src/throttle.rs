//! Sign-in throttling. Failed sign-ins are counted per account and per client address;
//! past the free ones, each failure makes the next attempt wait: 5 seconds, doubling with
//! every further failure, up to `web.throttle_minutes`. Once the wait is over any attempt
//! is heard, and the right password signs in: no one can lock an account, only slow its
//! sign-in to one attempt per wait. An attempt during the wait is refused unheard (no
//! password is checked, so guessing gains nothing and costs no hashing).
//!
//! Kept in memory, with the time passed in (tests move it): a restart forgets the
//! counts, and each replica keeps its own.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// The wait after the last free failure; each further failure doubles it.
const FIRST_WAIT: Duration = Duration::from_secs(5);
/// One address may fail this many times more often than one account: people behind one
/// NAT share it.
const ADDRESS_FACTOR: u64 = 4;
/// A key without failures for this long starts afresh.
const FORGET_AFTER: Duration = Duration::from_secs(24 * 3600);
/// Most keys kept; past it, those whose wait is over are dropped.
const MAX_KEYS: usize = 100_000;

#[derive(Clone, PartialEq, Eq, Hash)]
enum Key {
    Account(String),
    /// An IPv4 address, or an IPv6 /64 (one host usually has a whole /64).
    Address(IpAddr),
}

#[derive(Clone, Copy)]
struct Failures {
    count: u64,
    last: Instant,
}

pub struct SignInThrottle {
    /// Failures of one account before waits begin.
    free: u64,
    max_wait: Duration,
    failures: Mutex<HashMap<Key, Failures>>,
}

impl SignInThrottle {
    pub fn new(free: u64, max_wait: Duration) -> Self {
        Self {
            free,
            max_wait,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// How long a sign-in to `account` from `address` must still wait at `now`; `None`:
    /// it may be tried now.
    pub fn wait(&self, account: &str, address: Option<IpAddr>, now: Instant) -> Option<Duration> {
        let failures = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
        self.keys(account, address)
            .into_iter()
            .filter_map(|(key, free)| {
                let f = failures.get(&key)?;
                let until = f.last + wait_after(f.count, free, self.max_wait);
                Some(until.saturating_duration_since(now))
            })
            .filter(|wait| !wait.is_zero())
            .max()
    }

    /// Counts a failed sign-in.
    pub fn failed(&self, account: &str, address: Option<IpAddr>, now: Instant) {
        let mut failures = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
        if failures.len() >= MAX_KEYS {
            let max_wait = self.max_wait;
            failures.retain(|_, f| now.saturating_duration_since(f.last) < max_wait);
        }
        for (key, _) in self.keys(account, address) {
            let f = failures.entry(key).or_insert(Failures {
                count: 0,
                last: now,
            });
            if now.saturating_duration_since(f.last) > FORGET_AFTER {
                f.count = 0;
            }
            f.count += 1;
            f.last = now;
        }
    }

    /// The account signed in: its failures are forgotten (its address's are not, or one
    /// account of one's own would wipe the count of guesses at others).
    pub fn succeeded(&self, account: &str) {
        self.failures
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&Key::Account(account.to_owned()));
    }

    fn keys(&self, account: &str, address: Option<IpAddr>) -> Vec<(Key, u64)> {
        let mut keys = vec![(Key::Account(account.to_owned()), self.free)];
        if let Some(address) = address {
            keys.push((
                Key::Address(network_of(address)),
                self.free.saturating_mul(ADDRESS_FACTOR),
            ));
        }
        keys
    }
}

/// The wait after `count` failures of which `free` cost nothing.
fn wait_after(count: u64, free: u64, max_wait: Duration) -> Duration {
    if count < free {
        return Duration::ZERO;
    }
    let doublings = (count - free).min(30) as u32;
    FIRST_WAIT.saturating_mul(1 << doublings).min(max_wait)
}

fn network_of(address: IpAddr) -> IpAddr {
    match address.to_canonical() {
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & (u128::MAX << 64))),
        v4 => v4,
    }
}

/// A wait as people read it: "40 seconds", "4 minutes".
pub fn describe(wait: Duration) -> String {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    if seconds < 120 {
        format!("{seconds} seconds")
    } else {
        format!("{} minutes", seconds.div_ceil(60))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIFTEEN_MINUTES: Duration = Duration::from_secs(15 * 60);

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn waits_begin_after_the_free_failures_and_double_up_to_the_cap() {
        let waits: Vec<u64> = (0..12)
            .map(|count| wait_after(count, 3, FIFTEEN_MINUTES).as_secs())
            .collect();
        assert_eq!(waits, [0, 0, 0, 5, 10, 20, 40, 80, 160, 320, 640, 900]);
        assert_eq!(wait_after(10_000, 3, FIFTEEN_MINUTES), FIFTEEN_MINUTES);
    }

    #[test]
    fn the_right_password_is_heard_again_once_the_wait_is_over() {
        let throttle = SignInThrottle::new(3, FIFTEEN_MINUTES);
        let t0 = Instant::now();
        let mallory = ip("203.0.113.5");
        for _ in 0..3 {
            assert_eq!(throttle.wait("dora@example.org", mallory, t0), None);
            throttle.failed("dora@example.org", mallory, t0);
        }
        // From anywhere: the account itself waits.
        let dora = ip("198.51.100.7");
        assert_eq!(
            throttle.wait("dora@example.org", dora, t0 + secs(1)),
            Some(secs(4))
        );
        assert_eq!(throttle.wait("dora@example.org", dora, t0 + secs(5)), None);
        // Each further failure doubles the wait, up to the cap, never beyond.
        let mut now = t0 + secs(5);
        for expected in [10, 20, 40, 80, 160, 320, 640, 900, 900, 900] {
            throttle.failed("dora@example.org", mallory, now);
            assert_eq!(
                throttle.wait("dora@example.org", dora, now),
                Some(secs(expected))
            );
            now += secs(expected);
        }
        // After the wait the right password signs in, and the account starts afresh.
        assert_eq!(throttle.wait("dora@example.org", dora, now), None);
        throttle.succeeded("dora@example.org");
        throttle.failed("dora@example.org", dora, now);
        assert_eq!(throttle.wait("dora@example.org", dora, now), None);
    }

    #[test]
    fn one_address_guessing_at_many_accounts_waits_too() {
        let throttle = SignInThrottle::new(3, FIFTEEN_MINUTES);
        let now = Instant::now();
        let mallory = ip("203.0.113.5");
        for n in 0..12 {
            let account = format!("person{n}@example.org");
            assert_eq!(throttle.wait(&account, mallory, now), None, "{account}");
            throttle.failed(&account, mallory, now);
        }
        assert_eq!(
            throttle.wait("someone.else@example.org", mallory, now),
            Some(secs(5))
        );
        // Other addresses and other accounts are not slowed.
        assert_eq!(
            throttle.wait("someone.else@example.org", ip("198.51.100.7"), now),
            None
        );
        // One IPv6 host holds a whole /64.
        let v6 = ip("2001:db8:0:1::1");
        for n in 0..12 {
            throttle.failed(&format!("v6-{n}@example.org"), v6, now);
        }
        assert!(
            throttle
                .wait("x@example.org", ip("2001:db8:0:1::ffff"), now)
                .is_some()
        );
        assert_eq!(
            throttle.wait("x@example.org", ip("2001:db8:0:2::1"), now),
            None
        );
    }

    #[test]
    fn failures_a_day_old_are_forgotten() {
        let throttle = SignInThrottle::new(1, FIFTEEN_MINUTES);
        let t0 = Instant::now();
        throttle.failed("erin@example.org", None, t0);
        assert_eq!(throttle.wait("erin@example.org", None, t0), Some(secs(5)));
        let later = t0 + FORGET_AFTER + secs(1);
        throttle.failed("erin@example.org", None, later);
        assert_eq!(
            throttle.wait("erin@example.org", None, later),
            Some(secs(5)),
            "counted from one again, not doubled"
        );
    }

    #[test]
    fn waits_read_as_seconds_then_minutes() {
        assert_eq!(describe(Duration::from_millis(4_200)), "5 seconds");
        assert_eq!(describe(secs(40)), "40 seconds");
        assert_eq!(describe(secs(900)), "15 minutes");
        assert_eq!(describe(secs(121)), "3 minutes");
    }
}
