//! Remote placeholder targets (`$text: https://docs.example.com/api.yaml`) on hosts the config
//! allows: a plain HTTP GET, bounded in time and size. Blocking: the catalog runs off the async
//! runtime.

use std::io::Read;
use std::time::Duration;

/// Reads a remote placeholder target (for the catalog, which decides whether a URL may be read
/// at all).
pub trait RemoteReader: Send + Sync {
    fn read(&self, url: &url::Url, max_bytes: usize) -> Result<Vec<u8>, String>;
}

/// A slow documentation server must not stall a sync pass.
const TIMEOUT: Duration = Duration::from_secs(10);

pub struct HttpReader {
    client: reqwest::blocking::Client,
}

impl HttpReader {
    pub fn new() -> Result<Self, String> {
        // No redirects: an allowed host must not be able to send us to one that is not allowed.
        let client = reqwest::blocking::Client::builder()
            .timeout(TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Self { client })
    }
}

impl RemoteReader for HttpReader {
    fn read(&self, url: &url::Url, max_bytes: usize) -> Result<Vec<u8>, String> {
        let response = self.client.get(url.as_str()).send().map_err(|e| e.without_url().to_string())?;
        let status = response.status();
        if status.is_redirection() {
            return Err(format!("HTTP {status}: redirects are not followed"));
        }
        if !status.is_success() {
            return Err(format!("HTTP {status}"));
        }
        let mut body = Vec::new();
        let limit = u64::try_from(max_bytes).unwrap_or(u64::MAX).saturating_add(1);
        response.take(limit).read_to_end(&mut body).map_err(|e| e.to_string())?;
        if body.len() > max_bytes {
            return Err(format!("larger than the limit of {max_bytes} bytes"));
        }
        Ok(body)
    }
}
