//! The public keys a Backstage backend publishes (JWKS), fetched when first needed and again
//! when a token names a key not seen yet (keys rotate). Each key set has its own lock, so one
//! slow fetch holds up only the tokens that need that set; a set is fetched again for an
//! unknown key at most once per cooldown, a failed fetch is not retried for a while, and at
//! most a bounded number of sets is kept: a stream of bogus tokens cannot make Rigger hammer
//! the backend, nor lock out a real key rotation for long.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex as SyncMutex, PoisonError};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{Jwk, JwkSet};
use tokio::sync::Mutex;

/// How long a fetched key set is used before it is fetched again anyway.
const MAX_AGE: Duration = Duration::from_secs(600);
/// Shortest time between two fetches of one set for an unknown key id (jose's default).
const COOLDOWN: Duration = Duration::from_secs(30);
/// How long a failed fetch is remembered before the set is tried again.
const FAILURE_COOLDOWN: Duration = Duration::from_secs(5);
/// Key sets kept (one per plugin that calls, plus the auth plugin's); Backstage keeps 100.
const MAX_SETS: usize = 100;
/// Longest a key set fetch may take, and the largest key set read.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
const MAX_SET_BYTES: usize = 256 * 1024;

pub struct KeySets {
    http: reqwest::Client,
    sets: SyncMutex<Sets>,
}

#[derive(Default)]
struct Sets {
    by_url: HashMap<String, Arc<Mutex<Cached>>>,
    /// URLs in the order they were first seen, to forget the oldest beyond [`MAX_SETS`].
    order: VecDeque<String>,
}

#[derive(Default)]
struct Cached {
    set: Option<(JwkSet, Instant)>,
    failed_at: Option<Instant>,
}

impl Cached {
    /// Whether the set may be fetched now: never fetched, stale, or past the cooldowns.
    fn may_fetch(&self, now: Instant) -> Result<(), &'static str> {
        if self.failed_at.is_some_and(|at| now.duration_since(at) < FAILURE_COOLDOWN) {
            return Err("the last fetch failed moments ago");
        }
        match &self.set {
            Some((_, at)) if now.duration_since(*at) < COOLDOWN => Err("fetched moments ago"),
            _ => Ok(()),
        }
    }
}

impl KeySets {
    pub fn new(http: reqwest::Client) -> Self {
        Self { http, sets: SyncMutex::new(Sets::default()) }
    }

    fn entry(&self, url: &str) -> Arc<Mutex<Cached>> {
        let mut sets = self.sets.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(entry) = sets.by_url.get(url) {
            return entry.clone();
        }
        if sets.order.len() >= MAX_SETS {
            if let Some(oldest) = sets.order.pop_front() {
                sets.by_url.remove(&oldest);
            }
        }
        let entry = Arc::new(Mutex::new(Cached::default()));
        sets.by_url.insert(url.to_owned(), entry.clone());
        sets.order.push_back(url.to_owned());
        entry
    }

    /// The key `kid` of the set at `url`. Errors say why, for the log; callers answer `401`.
    pub async fn key(&self, url: &str, kid: &str) -> Result<Jwk, String> {
        let entry = self.entry(url);
        let mut cached = entry.lock().await;
        let now = Instant::now();
        let fresh = cached.set.as_ref().filter(|(_, at)| now.duration_since(*at) < MAX_AGE);
        if let Some(key) = fresh.and_then(|(set, _)| set.find(kid)) {
            return Ok(key.clone());
        }
        cached.may_fetch(now).map_err(|why| format!("no key {kid} in {url} ({why})"))?;
        match self.fetch(url).await {
            Ok(set) => {
                let key = set.find(kid).cloned();
                cached.set = Some((set, Instant::now()));
                cached.failed_at = None;
                key.ok_or_else(|| format!("no key {kid} in {url}"))
            }
            Err(e) => {
                cached.failed_at = Some(Instant::now());
                Err(e)
            }
        }
    }

    async fn fetch(&self, url: &str) -> Result<JwkSet, String> {
        let mut response = self.http.get(url).timeout(FETCH_TIMEOUT).send().await.map_err(|e| format!("{url}: {e}"))?;
        let status = response.status();
        if !status.is_success() {
            return Err(format!("{url} answered {status}"));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| format!("{url}: {e}"))? {
            if body.len() + chunk.len() > MAX_SET_BYTES {
                return Err(format!("{url}: a key set larger than {MAX_SET_BYTES} bytes"));
            }
            body.extend_from_slice(&chunk);
        }
        serde_json::from_slice(&body).map_err(|e| format!("{url} is not a JSON Web Key Set: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_set_is_fetched_again_only_past_its_cooldowns() {
        let now = Instant::now();
        assert!(Cached::default().may_fetch(now).is_ok(), "never fetched");
        let fetched = Cached { set: Some((JwkSet { keys: Vec::new() }, now)), failed_at: None };
        assert!(fetched.may_fetch(now + Duration::from_secs(1)).is_err(), "an unknown key id moments later");
        assert!(fetched.may_fetch(now + COOLDOWN + Duration::from_secs(1)).is_ok());
        let failed = Cached { set: None, failed_at: Some(now) };
        assert!(failed.may_fetch(now + Duration::from_secs(1)).is_err());
        assert!(failed.may_fetch(now + FAILURE_COOLDOWN + Duration::from_secs(1)).is_ok());
    }

    #[test]
    fn only_so_many_sets_are_kept() {
        let sets = KeySets::new(reqwest::Client::new());
        for i in 0..=MAX_SETS {
            sets.entry(&format!("http://b/api/p{i}/.backstage/auth/v1/jwks.json"));
        }
        let kept = sets.sets.lock().unwrap();
        assert_eq!(kept.by_url.len(), MAX_SETS);
        assert!(!kept.by_url.contains_key("http://b/api/p0/.backstage/auth/v1/jwks.json"), "the oldest went");
    }
}
