//! Addresses a webhook must never reach: anything inside the deployment's network or the
//! instance's (loopback, private, link-local — the metadata service at 169.254.169.254 —,
//! carrier-grade NAT, unspecified, reserved, multicast), whether written as IPv4 or hidden in
//! an IPv6 form that routes to IPv4: mapped (`::ffff:a.b.c.d`), compatible (`::a.b.c.d`),
//! NAT64 (`64:ff9b::/96`, `64:ff9b:1::/48`), 6to4 (`2002::/16`) and Teredo (`2001::/32`,
//! refused whole: its client address is obfuscated).
//!
//! The API checks the URL as written when a session is created; the webhook sender checks
//! every address the name resolves to when it delivers and connects only to those
//! (`switchyard_aws::webhooks`), so a name that resolves inside — or is rebound to an inside
//! address after the check — is never reached.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Whether a webhook must not be sent to `ip`.
pub fn forbidden_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => forbidden_v6(v6),
    }
}

fn forbidden_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // carrier-grade NAT
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || a >= 240 // reserved
}

fn forbidden_v6(ip: Ipv6Addr) -> bool {
    let seg = ip.segments();
    let embedded = |hi: u16, lo: u16| Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8);
    if let Some(v4) = ip.to_ipv4_mapped() {
        return forbidden_v4(v4);
    }
    // IPv4-compatible (deprecated, `::a.b.c.d`).
    if seg[..6].iter().all(|s| *s == 0) {
        return ip.is_loopback() || ip.is_unspecified() || forbidden_v4(embedded(seg[6], seg[7]));
    }
    // NAT64: the well-known prefix and the local-use one.
    if (seg[0], seg[1]) == (0x64, 0xff9b) && seg[2..6].iter().all(|s| *s == 0) {
        return forbidden_v4(embedded(seg[6], seg[7]));
    }
    if (seg[0], seg[1], seg[2]) == (0x64, 0xff9b, 0x1) {
        return true;
    }
    // 6to4: the IPv4 address in bits 16..48.
    if seg[0] == 0x2002 {
        return forbidden_v4(embedded(seg[1], seg[2]));
    }
    // Teredo.
    if (seg[0], seg[1]) == (0x2001, 0) {
        return true;
    }
    ip.is_multicast()
        || (seg[0] & 0xfe00) == 0xfc00 // unique local
        || (seg[0] & 0xffc0) == 0xfe80 // link-local
        || (seg[0] & 0xffc0) == 0xfec0 // site-local (deprecated)
        || (seg[0], seg[1]) == (0x2001, 0xdb8) // documentation
        || (seg[0] == 0x100 && seg[1..4].iter().all(|s| *s == 0)) // discard-only
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inside_addresses_are_refused_however_they_are_written() {
        for inside in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "240.0.0.1",
            "::1",
            "::",
            "::ffff:0.0.0.0",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b:1::1",
            "2002:7f00:1::",
            "2002:a9fe:a9fe::1",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
            "fd00::1",
            "fe80::1",
            "ff02::1",
        ] {
            assert!(forbidden_ip(inside.parse().unwrap()), "{inside} is inside");
        }
        for outside in ["93.184.216.34", "1.1.1.1", "2606:4700:4700::1111", "64:ff9b::5db8:d822", "2002:5db8:d822::1"] {
            assert!(!forbidden_ip(outside.parse().unwrap()), "{outside} is outside");
        }
    }
}
