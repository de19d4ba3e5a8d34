//! A phone's address: `host[:port]`, where the host is an IPv4 address, an IPv6 address in
//! brackets or a DNS name.
//!
//! An adoption names the address the agent sends the phone's credentials and every command to,
//! and it comes from MQTT, REST or the Manager. Anything beyond `host[:port]` would let it
//! choose more than the phone: a scheme, a user (`admin:pw@` becomes an `Authorization`
//! header), a path that makes every command fetch another URL (`/internal/admin#` cuts off
//! the vendor's own path), a query. So nothing else is accepted, not even whitespace.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The rule, as error messages state it.
pub const RULE: &str = "must be host[:port]: an IPv4 address, an IPv6 address in brackets or a DNS name, with an optional port; no scheme, user, path, query or fragment";

/// The port phones serve their web interface (and Action URI) on, unless the site says
/// otherwise: every vendor phone2mqtt knows ships with plain HTTP on 80.
pub const DEFAULT_PHONE_PORT: u16 = 80;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    Ip(IpAddr),
    Name(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhoneAddress {
    pub host: Host,
    pub port: Option<u16>,
}

/// An address that is not `host[:port]`: the rule, and what broke it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressError {
    pub broken: Broken,
    /// Read as a config file's address, where `http://` or `https://` may come first.
    configured: bool,
}

impl std::error::Error for AddressError {}

impl fmt::Display for AddressError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.configured {
            let rest = RULE.strip_prefix("must be host[:port]").unwrap_or(RULE);
            write!(f, "must be host[:port] or http(s)://host[:port]{rest}")?;
        } else {
            f.write_str(RULE)?;
        }
        write!(f, " ({})", self.broken)
    }
}

/// What breaks the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Broken {
    #[error("it is empty")]
    Empty,
    #[error("`/` starts a path or a scheme")]
    Path,
    #[error("`@` gives a user")]
    User,
    #[error("`?` starts a query")]
    Query,
    #[error("`#` starts a fragment")]
    Fragment,
    #[error("it holds whitespace")]
    Whitespace,
    #[error("`{0}` is not allowed")]
    Character(char),
    #[error("`[` without `]`")]
    UnclosedBracket,
    #[error("not an IPv6 address in the brackets")]
    NotIpv6InBrackets,
    #[error("text after `]`")]
    AfterBracket,
    #[error("brackets only around an IPv6 address")]
    StrayBracket,
    #[error("an IPv6 address goes in brackets: [2001:db8::5]:80")]
    Ipv6WithoutBrackets,
    #[error("no host")]
    NoHost,
    #[error("the name is longer than 253 characters")]
    NameTooLong,
    #[error("a name's labels have 1 to 63 characters")]
    LabelLength,
    #[error("a label starts or ends with `-`")]
    LabelHyphen,
    #[error("not an IPv4 address, and a name must not end in a number")]
    EndsInNumber,
    #[error("the port is not a number from 1 to 65535")]
    Port,
}

impl From<Broken> for AddressError {
    fn from(broken: Broken) -> AddressError {
        AddressError {
            broken,
            configured: false,
        }
    }
}

impl PhoneAddress {
    /// Reads `host[:port]`; the error states the rule and what broke it.
    pub fn parse(text: &str) -> Result<PhoneAddress, AddressError> {
        if text.is_empty() {
            return Err(Broken::Empty.into());
        }
        if let Some(bad) = text
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']')))
        {
            return Err(match bad {
                '/' => Broken::Path,
                '@' => Broken::User,
                '?' => Broken::Query,
                '#' => Broken::Fragment,
                c if c.is_whitespace() || c.is_control() => Broken::Whitespace,
                c => Broken::Character(c),
            }
            .into());
        }
        let (host, port) = if let Some(rest) = text.strip_prefix('[') {
            let (inside, after) = rest.split_once(']').ok_or(Broken::UnclosedBracket)?;
            let ip: Ipv6Addr = inside.parse().map_err(|_| Broken::NotIpv6InBrackets)?;
            let port = match after {
                "" => None,
                _ => Some(after.strip_prefix(':').ok_or(Broken::AfterBracket)?),
            };
            (Host::Ip(IpAddr::V6(ip)), port)
        } else {
            if text.contains(['[', ']']) {
                return Err(Broken::StrayBracket.into());
            }
            let (host, port) = match text.split_once(':') {
                Some((_, port)) if port.contains(':') => {
                    return Err(Broken::Ipv6WithoutBrackets.into())
                }
                Some((host, port)) => (host, Some(port)),
                None => (text, None),
            };
            let host = match host.parse::<Ipv4Addr>() {
                Ok(ip) => Host::Ip(IpAddr::V4(ip)),
                Err(_) => Host::Name(dns_name(host)?),
            };
            (host, port)
        };
        let port = port
            .map(|port| {
                port.parse::<u16>()
                    .ok()
                    .filter(|p| *p != 0 && port.bytes().all(|b| b.is_ascii_digit()))
                    .ok_or(Broken::Port)
            })
            .transpose()?;
        Ok(PhoneAddress { host, port })
    }

    /// The address of `ip` on `port`, the port left out when it is the default one.
    pub fn at(ip: IpAddr, port: u16) -> PhoneAddress {
        PhoneAddress {
            host: Host::Ip(ip.to_canonical()),
            port: (port != DEFAULT_PHONE_PORT).then_some(port),
        }
    }

    /// The host when it is an IP address (an IPv4-mapped IPv6 address as IPv4).
    pub fn ip(&self) -> Option<IpAddr> {
        match &self.host {
            Host::Ip(ip) => Some(ip.to_canonical()),
            Host::Name(_) => None,
        }
    }

    /// The port a request goes to.
    pub fn port(&self) -> u16 {
        self.port.unwrap_or(DEFAULT_PHONE_PORT)
    }
}

impl fmt::Display for PhoneAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.host {
            Host::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]")?,
            Host::Ip(ip) => write!(f, "{ip}")?,
            Host::Name(name) => f.write_str(name)?,
        }
        match self.port {
            Some(port) => write!(f, ":{port}"),
            None => Ok(()),
        }
    }
}

/// A `[[phone]] address` of the config file: the same, or with `http://` / `https://` in
/// front (phones with HTTPS only), and a trailing `/` tolerated. The file is the site's own,
/// but a path or a user there would still send every command somewhere else.
pub fn check_configured(text: &str) -> Result<(), AddressError> {
    let rest = text
        .strip_prefix("http://")
        .or_else(|| text.strip_prefix("https://"))
        .unwrap_or(text);
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    PhoneAddress::parse(rest)
        .map(|_| ())
        .map_err(|err| AddressError {
            configured: true,
            ..err
        })
}

/// A DNS name, lower-cased: dot-separated labels of letters, digits and inner hyphens. One
/// that ends in a number is refused, because URL parsers read `127.1` or `0x7f.1` as an IPv4
/// address, so it would not be the name it looks like.
fn dns_name(host: &str) -> Result<String, Broken> {
    if host.is_empty() {
        return Err(Broken::NoHost);
    }
    if host.len() > 253 {
        return Err(Broken::NameTooLong);
    }
    for label in host.split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err(Broken::LabelLength);
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(Broken::LabelHyphen);
        }
    }
    let last = host.rsplit('.').next().unwrap_or(host);
    let hex = last
        .strip_prefix("0x")
        .or_else(|| last.strip_prefix("0X"))
        .is_some_and(|digits| digits.bytes().all(|b| b.is_ascii_hexdigit()));
    if hex || last.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Broken::EndsInNumber);
    }
    Ok(host.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_and_port_are_read() {
        for (text, shown, ip, port) in [
            ("10.0.0.5", "10.0.0.5", Some("10.0.0.5"), 80),
            ("10.0.0.5:8080", "10.0.0.5:8080", Some("10.0.0.5"), 8080),
            ("[2001:db8::5]", "[2001:db8::5]", Some("2001:db8::5"), 80),
            (
                "[::ffff:10.0.0.5]:81",
                "[::ffff:10.0.0.5]:81",
                Some("10.0.0.5"),
                81,
            ),
            (
                "Phone-3.Example.com:443",
                "phone-3.example.com:443",
                None,
                443,
            ),
            ("localhost", "localhost", None, 80),
        ] {
            let address = PhoneAddress::parse(text).unwrap();
            assert_eq!(address.to_string(), shown);
            assert_eq!(address.ip(), ip.map(|ip| ip.parse().unwrap()), "{text}");
            assert_eq!(address.port(), port, "{text}");
        }
    }

    #[test]
    fn anything_beyond_host_and_port_is_refused() {
        for text in [
            "",
            "http://10.0.0.5",
            "10.0.0.5/",
            "10.0.0.5:80/internal#",
            "admin:pw@10.0.0.5",
            "10.0.0.5?x",
            "10.0.0.5#",
            " 10.0.0.5",
            "10.0.0.5\n",
            "10.0.0.5%0a",
            "::1",
            "[::1",
            "[::1]x",
            "[10.0.0.5]",
            "[fe80::1%eth0]",
            "10.0.0.5:",
            "10.0.0.5:0",
            "10.0.0.5:65536",
            "10.0.0.5:+80",
            "10.0.0.5:8o",
            "127.1",
            "010.0.0.1",
            "0x7f.0.0.1",
            "phone.0x10",
            "-phone",
            "phone-.example.com",
            "a..b",
            "ph_one",
            "phöne",
        ] {
            let err = PhoneAddress::parse(text).unwrap_err().to_string();
            assert!(err.starts_with(RULE), "{text:?}: {err}");
        }
        let err = PhoneAddress::parse("admin:pw@10.0.0.5").unwrap_err();
        assert_eq!(err.broken, Broken::User);
        assert_eq!(err.to_string(), format!("{RULE} (`@` gives a user)"));
    }

    #[test]
    fn the_config_file_may_add_a_scheme() {
        assert!(check_configured("https://10.0.0.5:443/").is_ok());
        assert!(check_configured("http://[2001:db8::5]").is_ok());
        assert!(check_configured("10.0.0.5").is_ok());
        let err = check_configured("http://10.0.0.5/cgi-bin/x").unwrap_err();
        assert_eq!(err.broken, Broken::Path);
        assert_eq!(
            err.to_string(),
            format!(
                "must be host[:port] or http(s)://host[:port]{} (`/` starts a path or a scheme)",
                &RULE["must be host[:port]".len()..]
            )
        );
        assert!(check_configured("ftp://10.0.0.5").is_err());
        assert!(check_configured("http://admin:x@10.0.0.5").is_err());
    }

    #[test]
    fn an_ip_and_port_make_an_address() {
        let v4: IpAddr = "10.0.0.5".parse().unwrap();
        assert_eq!(PhoneAddress::at(v4, 80).to_string(), "10.0.0.5");
        assert_eq!(PhoneAddress::at(v4, 8080).to_string(), "10.0.0.5:8080");
        let mapped: IpAddr = "::ffff:10.0.0.5".parse().unwrap();
        assert_eq!(PhoneAddress::at(mapped, 80).to_string(), "10.0.0.5");
        let v6: IpAddr = "2001:db8::5".parse().unwrap();
        assert_eq!(PhoneAddress::at(v6, 80).to_string(), "[2001:db8::5]");
    }
}
