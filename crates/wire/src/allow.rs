//! Allow lists of peers, as gunicorn's `--forwarded-allow-ips` takes them: addresses,
//! networks in CIDR notation, or `*` for everyone, separated by commas.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;

/// Which peers are trusted. The empty list trusts nobody.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowList {
    any: bool,
    nets: Vec<IpNet>,
}

/// An entry of an allow list that is neither an address, a network nor `*`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{entry:?} is not an IP address, a network (10.0.0.0/8) or *")]
pub struct AllowListError {
    pub entry: String,
}

impl AllowList {
    /// Trusts every peer (`*`).
    pub fn any() -> AllowList {
        AllowList {
            any: true,
            nets: Vec::new(),
        }
    }

    /// Parses `127.0.0.1, ::1, 10.0.0.0/8` (commas and/or spaces between entries; `[::1]`
    /// accepted; host bits under a prefix are ignored, as Python's `strict=False` does).
    pub fn parse(text: &str) -> Result<AllowList, AllowListError> {
        let mut list = AllowList::default();
        for entry in text
            .split(|c: char| c == ',' || c.is_ascii_whitespace())
            .filter(|e| !e.is_empty())
        {
            if entry == "*" {
                list.any = true;
                continue;
            }
            let bare = entry
                .strip_prefix('[')
                .and_then(|e| e.strip_suffix(']'))
                .unwrap_or(entry);
            let net = if bare.contains('/') {
                IpNet::from_str(bare).map(|n| n.trunc()).ok()
            } else {
                IpAddr::from_str(bare).map(IpNet::from).ok()
            };
            list.nets.push(net.ok_or_else(|| AllowListError {
                entry: entry.to_string(),
            })?);
        }
        Ok(list)
    }

    /// Whether the list trusts nobody.
    pub fn is_empty(&self) -> bool {
        !self.any && self.nets.is_empty()
    }

    /// Whether the list is `*`.
    pub fn allows_any(&self) -> bool {
        self.any
    }

    /// Whether a connection from `peer` is admitted: its address is trusted, or it came over
    /// a Unix-domain socket (`None`), which counts as trusted unless the list is empty.
    pub fn admits(&self, peer: Option<IpAddr>) -> bool {
        match peer {
            Some(ip) => self.contains(ip),
            None => !self.is_empty(),
        }
    }

    /// Whether `ip` is trusted. An IPv4 peer seen through a dual-stack socket
    /// (`::ffff:10.1.2.3`) matches the IPv4 entries.
    pub fn contains(&self, ip: IpAddr) -> bool {
        if self.any {
            return true;
        }
        let canonical = ip.to_canonical();
        self.nets
            .iter()
            .any(|net| net.contains(&ip) || net.contains(&canonical))
    }
}

impl FromStr for AllowList {
    type Err = AllowListError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        AllowList::parse(s)
    }
}

impl fmt::Display for AllowList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut entries: Vec<String> = self.nets.iter().map(|n| n.to_string()).collect();
        if self.any {
            entries.insert(0, "*".into());
        }
        f.write_str(&entries.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn addresses_networks_and_star() {
        let list = AllowList::parse("127.0.0.1, ::1,10.0.0.0/8 fd00::/8").unwrap();
        assert!(list.contains(ip("127.0.0.1")));
        assert!(list.contains(ip("::1")));
        assert!(list.contains(ip("10.200.3.4")));
        assert!(list.contains(ip("fd12::5")));
        assert!(!list.contains(ip("127.0.0.2")));
        assert!(!list.contains(ip("11.0.0.1")));
        assert!(!list.contains(ip("fe80::1")));
        assert!(AllowList::parse("*").unwrap().contains(ip("203.0.113.9")));
        assert!(AllowList::parse("*").unwrap().allows_any());
    }

    #[test]
    fn ipv4_mapped_peers_match_ipv4_entries() {
        let list = AllowList::parse("10.0.0.0/8").unwrap();
        assert!(list.contains(ip("::ffff:10.1.2.3")));
        assert!(!list.contains(ip("::ffff:11.1.2.3")));
    }

    #[test]
    fn host_bits_under_a_prefix_are_ignored_and_brackets_accepted() {
        let list = AllowList::parse("10.1.2.3/8,[2001:db8::1]").unwrap();
        assert!(list.contains(ip("10.9.9.9")));
        assert!(list.contains(ip("2001:db8::1")));
        assert_eq!(list.to_string(), "10.0.0.0/8,2001:db8::1/128");
    }

    #[test]
    fn empty_trusts_nobody() {
        let list = AllowList::parse(" , ").unwrap();
        assert!(list.is_empty());
        assert!(!list.contains(ip("127.0.0.1")));
    }

    #[test]
    fn names_and_garbage_are_refused() {
        for bad in [
            "localhost",
            "10.0.0.0/33",
            "1.2.3",
            "::1::2",
            "10.0.0.0/",
            "*x",
        ] {
            let err = AllowList::parse(&format!("127.0.0.1,{bad}")).unwrap_err();
            assert_eq!(err.entry, bad);
        }
    }
}
