//! IP networks in CIDR form, for a token's allowlist of client addresses.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::NetworkError;

/// The most networks one token's allowlist may hold.
pub const MAX_ALLOWED_NETWORKS: usize = 100;

/// An IPv4 or IPv6 network in CIDR form: `203.0.113.0/24`, `2001:db8::/32`,
/// or a single address (`198.51.100.7`, the same as `/32`, or `/128`).
///
/// The address must be the network's first: `10.1.2.3/8` is refused, since
/// it is more likely a typo for `10.1.2.3/32` than a wish for all of
/// `10.0.0.0/8`. Its text form (`Display`, `FromStr`, serde) always
/// carries the prefix length.
///
/// An IPv4 client seen through an IPv6 socket (`::ffff:203.0.113.9`) is
/// matched as the IPv4 address it is.
///
/// ```
/// use api_tokens::IpNetwork;
/// use std::net::IpAddr;
///
/// let office: IpNetwork = "203.0.113.0/24".parse()?;
/// assert!(office.contains("203.0.113.77".parse::<IpAddr>().unwrap()));
/// assert!(office.contains("::ffff:203.0.113.77".parse::<IpAddr>().unwrap()));
/// assert!(!office.contains("203.0.114.1".parse::<IpAddr>().unwrap()));
/// assert!("10.1.2.3/8".parse::<IpNetwork>().is_err());
/// # Ok::<(), api_tokens::NetworkError>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IpNetwork {
    address: IpAddr,
    prefix: u8,
}

impl IpNetwork {
    /// The network of `address` with `prefix` leading bits.
    ///
    /// # Errors
    ///
    /// [`NetworkError::PrefixTooLong`] past 32 (IPv4) or 128 (IPv6) bits,
    /// [`NetworkError::HostBitsSet`] if `address` is not the network's first.
    pub fn new(address: IpAddr, prefix: u8) -> Result<Self, NetworkError> {
        let bits = match address {
            IpAddr::V4(_) => 32,
            IpAddr::V6(_) => 128,
        };
        if prefix > bits {
            return Err(NetworkError::PrefixTooLong);
        }
        let network = IpNetwork { address, prefix };
        if network.first() != address {
            return Err(NetworkError::HostBitsSet);
        }
        Ok(network)
    }

    /// The network's first address.
    pub fn address(&self) -> IpAddr {
        self.address
    }

    /// How many leading bits name the network.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// Whether `address` lies in the network. An IPv4-mapped IPv6 address
    /// is compared as IPv4.
    pub fn contains(&self, address: IpAddr) -> bool {
        match (self.address, address.to_canonical()) {
            (IpAddr::V4(network), IpAddr::V4(address)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(address) & mask == u32::from(network)
            }
            (IpAddr::V6(network), IpAddr::V6(address)) => self.holds_v6(network, address),
            // A network written in IPv6 form may hold IPv4 clients, as
            // their mapped addresses (`::ffff:10.0.0.0/104`).
            (IpAddr::V6(network), IpAddr::V4(address)) => {
                self.holds_v6(network, address.to_ipv6_mapped())
            }
            (IpAddr::V4(_), IpAddr::V6(_)) => false,
        }
    }

    fn holds_v6(&self, network: Ipv6Addr, address: Ipv6Addr) -> bool {
        let mask = u128::MAX
            .checked_shl(128 - u32::from(self.prefix))
            .unwrap_or(0);
        u128::from(address) & mask == u128::from(network)
    }

    /// `address` with the bits past the prefix cleared.
    fn first(&self) -> IpAddr {
        match self.address {
            IpAddr::V4(address) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                IpAddr::V4(Ipv4Addr::from(u32::from(address) & mask))
            }
            IpAddr::V6(address) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                IpAddr::V6(Ipv6Addr::from(u128::from(address) & mask))
            }
        }
    }
}

impl FromStr for IpNetwork {
    type Err = NetworkError;

    /// Reads `address/prefix` or a bare address. Nothing else: no spaces,
    /// no zone ids, no leading zeros in the prefix.
    fn from_str(text: &str) -> Result<Self, NetworkError> {
        // The longest valid text is an IPv6 address in full (45 bytes with
        // an embedded IPv4 tail) and `/128`.
        if text.is_empty() || text.len() > 49 {
            return Err(NetworkError::Malformed);
        }
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text, None),
        };
        let address: IpAddr = address.parse().map_err(|_| NetworkError::Malformed)?;
        let prefix = match prefix {
            None => match address {
                IpAddr::V4(_) => 32,
                IpAddr::V6(_) => 128,
            },
            Some(prefix) => {
                let digits_only = !prefix.is_empty()
                    && prefix.len() <= 3
                    && prefix.bytes().all(|b| b.is_ascii_digit())
                    && (prefix == "0" || !prefix.starts_with('0'));
                if !digits_only {
                    return Err(NetworkError::Malformed);
                }
                let prefix: u16 = prefix.parse().map_err(|_| NetworkError::Malformed)?;
                u8::try_from(prefix).map_err(|_| NetworkError::PrefixTooLong)?
            }
        };
        IpNetwork::new(address, prefix)
    }
}

impl fmt::Display for IpNetwork {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.address, self.prefix)
    }
}

impl fmt::Debug for IpNetwork {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Serialize for IpNetwork {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for IpNetwork {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        crate::text::deserialize_from_str(deserializer, "a network in CIDR form")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn reads_and_writes_cidr_text() {
        for (text, written) in [
            ("10.0.0.0/8", "10.0.0.0/8"),
            ("0.0.0.0/0", "0.0.0.0/0"),
            ("198.51.100.7", "198.51.100.7/32"),
            ("2001:db8::/32", "2001:db8::/32"),
            ("::/0", "::/0"),
            ("2001:db8::1", "2001:db8::1/128"),
        ] {
            assert_eq!(text.parse::<IpNetwork>().unwrap().to_string(), written);
        }
    }

    #[test]
    fn refuses_what_is_not_one_network() {
        for (text, error) in [
            ("", NetworkError::Malformed),
            ("10.0.0.0/", NetworkError::Malformed),
            ("10.0.0.0/08", NetworkError::Malformed),
            ("10.0.0.0/+8", NetworkError::Malformed),
            ("10.0.0.0/8 ", NetworkError::Malformed),
            (" 10.0.0.0/8", NetworkError::Malformed),
            ("10.0.0/8", NetworkError::Malformed),
            ("10.0.0.0/8/8", NetworkError::Malformed),
            ("fe80::1%eth0", NetworkError::Malformed),
            ("１０.0.0.0/8", NetworkError::Malformed),
            ("10.0.0.0/33", NetworkError::PrefixTooLong),
            ("::/129", NetworkError::PrefixTooLong),
            ("10.0.0.0/999", NetworkError::PrefixTooLong),
            ("10.1.2.3/8", NetworkError::HostBitsSet),
            ("2001:db8::1/32", NetworkError::HostBitsSet),
        ] {
            assert_eq!(text.parse::<IpNetwork>(), Err(error), "{text:?}");
        }
        assert_eq!(
            "1".repeat(1 << 20).parse::<IpNetwork>(),
            Err(NetworkError::Malformed)
        );
    }

    #[test]
    fn contains_exactly_the_networks_addresses() {
        let v4: IpNetwork = "203.0.113.0/24".parse().unwrap();
        assert!(v4.contains(ip("203.0.113.0")));
        assert!(v4.contains(ip("203.0.113.255")));
        assert!(v4.contains(ip("::ffff:203.0.113.9")));
        assert!(!v4.contains(ip("203.0.112.255")));
        assert!(!v4.contains(ip("203.0.114.0")));
        assert!(!v4.contains(ip("2001:db8::1")));

        let v6: IpNetwork = "2001:db8::/32".parse().unwrap();
        assert!(v6.contains(ip("2001:db8:ffff::1")));
        assert!(!v6.contains(ip("2001:db9::1")));
        assert!(!v6.contains(ip("203.0.113.9")));

        let everything: IpNetwork = "0.0.0.0/0".parse().unwrap();
        assert!(everything.contains(ip("1.2.3.4")));
        let mapped: IpNetwork = "::ffff:10.0.0.0/104".parse().unwrap();
        assert!(mapped.contains(ip("10.1.2.3")));
        assert!(mapped.contains(ip("::ffff:10.1.2.3")));
        assert!(!mapped.contains(ip("11.0.0.1")));
        let host: IpNetwork = "198.51.100.7".parse().unwrap();
        assert!(host.contains(ip("198.51.100.7")));
        assert!(!host.contains(ip("198.51.100.8")));
    }
}
