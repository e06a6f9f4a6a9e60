//! The public keys a Backstage backend publishes (JWKS), fetched when first needed and again
//! when a token names a key not seen yet (keys rotate), with Backstage's own bound on such
//! forced reloads so a stream of bogus key ids cannot make Rigger hammer the backend.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{Jwk, JwkSet};
use tokio::sync::Mutex;

/// How long a fetched key set is used before it is fetched again anyway.
const MAX_AGE: Duration = Duration::from_secs(600);
/// Forced reloads (an unknown key id) allowed per window, for all key sets together.
const FORCED_RELOADS: usize = 10;
const FORCED_RELOAD_WINDOW: Duration = Duration::from_secs(60);
/// Longest a key set fetch may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

pub struct KeySets {
    http: reqwest::Client,
    cached: Mutex<Cache>,
}

#[derive(Default)]
struct Cache {
    sets: HashMap<String, (JwkSet, Instant)>,
    forced: VecDeque<Instant>,
}

impl Cache {
    fn may_force(&mut self, now: Instant) -> bool {
        while self.forced.front().is_some_and(|t| now.duration_since(*t) > FORCED_RELOAD_WINDOW) {
            self.forced.pop_front();
        }
        if self.forced.len() >= FORCED_RELOADS {
            return false;
        }
        self.forced.push_back(now);
        true
    }
}

impl KeySets {
    pub fn new(http: reqwest::Client) -> Self {
        Self { http, cached: Mutex::new(Cache::default()) }
    }

    /// The key `kid` of the set at `url`. Errors say why, for the log; callers answer `401`.
    pub async fn key(&self, url: &str, kid: &str) -> Result<Jwk, String> {
        let mut cache = self.cached.lock().await;
        let now = Instant::now();
        let fresh = cache.sets.get(url).filter(|(_, at)| now.duration_since(*at) < MAX_AGE);
        if let Some(key) = fresh.and_then(|(set, _)| set.find(kid)) {
            return Ok(key.clone());
        }
        // Not cached, stale, or a key id this set did not have: fetch, within the bound.
        if fresh.is_some() && !cache.may_force(now) {
            return Err(format!("no key {kid} in {url} (reloads are rate-limited)"));
        }
        let set = self.fetch(url).await?;
        let key = set.find(kid).cloned();
        cache.sets.insert(url.to_owned(), (set, now));
        key.ok_or_else(|| format!("no key {kid} in {url}"))
    }

    async fn fetch(&self, url: &str) -> Result<JwkSet, String> {
        let response = self.http.get(url).timeout(FETCH_TIMEOUT).send().await.map_err(|e| format!("{url}: {e}"))?;
        let status = response.status();
        if !status.is_success() {
            return Err(format!("{url} answered {status}"));
        }
        let body = response.bytes().await.map_err(|e| format!("{url}: {e}"))?;
        serde_json::from_slice(&body).map_err(|e| format!("{url} is not a JSON Web Key Set: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forced_reloads_are_bounded_per_window() {
        let mut cache = Cache::default();
        let start = Instant::now();
        assert!((0..FORCED_RELOADS).all(|_| cache.may_force(start)));
        assert!(!cache.may_force(start), "the eleventh in a minute waits");
        assert!(cache.may_force(start + FORCED_RELOAD_WINDOW + Duration::from_secs(1)));
    }
}
