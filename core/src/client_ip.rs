//! The client's IP address as seen through trusted reverse proxies: `X-Forwarded-For` is believed
//! only when the direct peer is a trusted proxy, and is walked from the right (the nearest hop
//! first) past every trusted address, so a client cannot choose its own IP by sending the header.

use std::net::IpAddr;

use ipnet::IpNet;

/// A list of CIDR ranges: hops trusted to report the client address, or an allow or deny list.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Parses CIDR strings (`127.0.0.1/32`, `10.0.0.0/8`, `::1/128`); a bare address means one host.
    pub fn parse<S: AsRef<str>>(items: &[S]) -> Result<Self, String> {
        items
            .iter()
            .map(|item| {
                let text = item.as_ref().trim();
                text.parse::<IpNet>()
                    .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| format!("{text:?} is not a CIDR range or an IP address"))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Self)
    }

    /// Whether the list has no range at all.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn contains(&self, ip: &IpAddr) -> bool {
        self.0.iter().any(|net| net.contains(ip))
    }

    /// The client address for a request from `peer` carrying these `X-Forwarded-For` values.
    pub fn client_ip<'a>(&self, peer: IpAddr, forwarded_for: impl IntoIterator<Item = &'a str>) -> IpAddr {
        if !self.contains(&peer) {
            return peer;
        }
        let hops: Vec<&str> = forwarded_for
            .into_iter()
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect();
        let mut client = peer;
        for hop in hops.iter().rev() {
            match hop.parse::<IpAddr>() {
                Ok(ip) => {
                    client = ip;
                    if !self.contains(&ip) {
                        break;
                    }
                }
                // An unreadable hop: stop at the last address we could trust.
                Err(_) => break,
            }
        }
        client
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("ip")
    }

    #[test]
    fn untrusted_peers_are_their_own_client() {
        let trusted = TrustedProxies::parse(&["127.0.0.1/32"]).expect("cidrs");
        assert_eq!(trusted.client_ip(ip("203.0.113.9"), ["1.2.3.4"]), ip("203.0.113.9"));
    }

    #[test]
    fn forwarded_for_is_walked_from_the_right_past_trusted_hops() {
        let trusted = TrustedProxies::parse(&["127.0.0.1", "10.0.0.0/8"]).expect("cidrs");
        // The client claims 6.6.6.6, the edge saw 198.51.100.7, an internal hop 10.1.2.3 forwarded.
        let chain = ["6.6.6.6, 198.51.100.7", "10.1.2.3"];
        assert_eq!(trusted.client_ip(ip("127.0.0.1"), chain), ip("198.51.100.7"));
        assert_eq!(trusted.client_ip(ip("127.0.0.1"), ["garbage"]), ip("127.0.0.1"));
        assert_eq!(trusted.client_ip(ip("127.0.0.1"), Vec::<&str>::new()), ip("127.0.0.1"));
    }

    #[test]
    fn bad_ranges_are_named() {
        let err = TrustedProxies::parse(&["10.0.0.0/99"]).expect_err("bad");
        assert!(err.contains("10.0.0.0/99"));
    }
}
