//! Upstream origins (Ajax or ajax-sim, and the control plane): parsing, asynchronous name
//! resolution with a cache (Pingora's `HttpPeer::new` would resolve with a blocking lookup and panic
//! on failure), and building the peer with SNI and certificate verification on.

use std::net::SocketAddr;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use pingora::prelude::HttpPeer;

/// How long a resolved address is used before it is looked up again.
const RESOLVE_TTL: Duration = Duration::from_secs(60);

/// An upstream origin: scheme, host and port, no path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub tls: bool,
    pub host: String,
    pub port: u16,
}

impl Origin {
    /// Parses `http(s)://host[:port]` (a trailing `/` is allowed, nothing else after the authority).
    pub fn parse(url: &str) -> Result<Self, String> {
        let (tls, rest) = if let Some(rest) = url.strip_prefix("https://") {
            (true, rest)
        } else if let Some(rest) = url.strip_prefix("http://") {
            (false, rest)
        } else {
            return Err(format!("{url:?} must start with http:// or https://"));
        };
        let authority = rest.trim_end_matches('/');
        if authority.is_empty() || authority.contains(['/', '?', '#', '@']) {
            return Err(format!("{url:?} must be an origin (scheme, host, optional port)"));
        }
        let default_port = if tls { 443 } else { 80 };
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) if !host.ends_with(']') || authority.starts_with('[') => {
                let port = port
                    .parse::<u16>()
                    .map_err(|_| format!("{url:?} has an invalid port"))?;
                (host, port)
            }
            _ => (authority, default_port),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(format!("{url:?} has no host"));
        }
        Ok(Self {
            tls,
            host: host.to_owned(),
            port,
        })
    }

    /// The origin as a URL (`https://host[:port]`).
    pub fn url(&self) -> String {
        format!("{}://{}", if self.tls { "https" } else { "http" }, self.host_header())
    }

    /// The `Host` header value for requests to this origin.
    pub fn host_header(&self) -> String {
        let default = if self.tls { 443 } else { 80 };
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port == default {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

/// An origin with its cached address. TLS peers trust the system roots.
pub struct Upstream {
    pub origin: Origin,
    /// `origin.host_header()`, made once.
    pub host_header: String,
    timeout: Duration,
    resolved: RwLock<Option<(SocketAddr, Instant)>>,
}

/// The origin's name could not be resolved.
#[derive(Debug, thiserror::Error)]
#[error("cannot resolve {host}: {reason}")]
pub struct ResolveError {
    pub host: String,
    pub reason: String,
}

impl Upstream {
    pub fn new(origin: Origin, timeout: Duration) -> Self {
        Self {
            host_header: origin.host_header(),
            origin,
            timeout,
            resolved: RwLock::new(None),
        }
    }

    /// The origin's address: cached, looked up again asynchronously after a minute; a stale address
    /// is kept when a later lookup fails.
    pub async fn address(&self) -> Result<SocketAddr, ResolveError> {
        let cached = self.resolved.read().ok().and_then(|guard| *guard);
        if let Some((addr, at)) = cached
            && at.elapsed() < RESOLVE_TTL
        {
            return Ok(addr);
        }
        let lookup = tokio::net::lookup_host((self.origin.host.as_str(), self.origin.port)).await;
        let fresh = lookup.ok().and_then(|mut addrs| addrs.next());
        match (fresh, cached) {
            (Some(addr), _) => {
                if let Ok(mut guard) = self.resolved.write() {
                    *guard = Some((addr, Instant::now()));
                }
                Ok(addr)
            }
            (None, Some((stale, _))) => Ok(stale),
            (None, None) => Err(ResolveError {
                host: self.origin.host.clone(),
                reason: "no address".into(),
            }),
        }
    }

    /// A peer for this origin: SNI set to the host name (rustls skips verification on an empty SNI),
    /// certificate and host name verified, timeouts set.
    pub async fn peer(&self) -> Result<Box<HttpPeer>, ResolveError> {
        let addr = self.address().await?;
        let mut peer = HttpPeer::new(addr, self.origin.tls, self.origin.host.clone());
        peer.options.verify_cert = true;
        peer.options.verify_hostname = true;
        peer.options.connection_timeout = Some(Duration::from_secs(5));
        peer.options.total_connection_timeout = Some(Duration::from_secs(10));
        peer.options.read_timeout = Some(self.timeout);
        peer.options.write_timeout = Some(self.timeout);
        peer.options.idle_timeout = Some(Duration::from_secs(60));
        Ok(Box::new(peer))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_parse_with_default_and_explicit_ports() {
        let ajax = Origin::parse("https://api.ajax.systems").expect("ajax");
        assert_eq!(
            (ajax.tls, ajax.host.as_str(), ajax.port),
            (true, "api.ajax.systems", 443)
        );
        assert_eq!(ajax.host_header(), "api.ajax.systems");
        let sim = Origin::parse("http://127.0.0.1:7070/").expect("sim");
        assert_eq!((sim.tls, sim.host.as_str(), sim.port), (false, "127.0.0.1", 7070));
        assert_eq!(sim.host_header(), "127.0.0.1:7070");
        assert_eq!(sim.url(), "http://127.0.0.1:7070");
        assert_eq!(ajax.url(), "https://api.ajax.systems");
        let v6 = Origin::parse("http://[::1]:81").expect("v6");
        assert_eq!((v6.host.as_str(), v6.port), ("::1", 81));
        assert_eq!(v6.host_header(), "[::1]:81");
    }

    #[test]
    fn urls_that_are_not_origins_are_refused() {
        for bad in [
            "ftp://x",
            "https://",
            "https://h/api",
            "https://u:p@h",
            "http://h:notaport",
        ] {
            assert!(Origin::parse(bad).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn peer_keeps_sni_and_verification_on() {
        let upstream = Upstream::new(
            Origin::parse("https://localhost:8443").expect("origin"),
            Duration::from_secs(1),
        );
        let peer = upstream.peer().await.expect("peer");
        assert_eq!(peer.sni, "localhost");
        assert!(peer.options.verify_cert && peer.options.verify_hostname);
    }
}
