//! `EndpointAddr`: a peer id and the socket addresses it can be reached at,
//! written `<peer-hex>@ip:port[,ip:port...]`.

use std::fmt;
use std::net::SocketAddr;

use mosaik_core::PeerId;
use serde::{Deserialize, Serialize};

use crate::error::NetError;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointAddr {
    pub peer_id: PeerId,
    pub addrs: Vec<SocketAddr>,
}

impl EndpointAddr {
    pub fn parse(text: &str) -> Result<Self, NetError> {
        let bad = |why: &str| NetError::Config(format!("invalid endpoint address {text:?}: {why}"));
        let (peer, addrs) = text
            .split_once('@')
            .ok_or_else(|| bad("expected <peer-hex>@ip:port"))?;
        let peer_id = PeerId::from_hex(peer.trim())
            .ok_or_else(|| bad("the peer id must be 64 hex characters"))?;
        let addrs = addrs
            .split(',')
            .map(|a| parse_socket_addr(a.trim()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(EndpointAddr { peer_id, addrs })
    }
}

/// Parses `ip:port` (IPv6 as `[ip]:port`), naming the value on failure.
pub fn parse_socket_addr(text: &str) -> Result<SocketAddr, NetError> {
    text.parse()
        .map_err(|_| NetError::Config(format!("invalid socket address {text:?}: expected ip:port")))
}

impl fmt::Display for EndpointAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@", self.peer_id)?;
        for (i, a) in self.addrs.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{a}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_and_parse_round_trip() {
        let addr = EndpointAddr {
            peer_id: PeerId([0xab; 32]),
            addrs: vec![
                "127.0.0.1:7000".parse().unwrap(),
                "[::1]:7001".parse().unwrap(),
            ],
        };
        assert_eq!(EndpointAddr::parse(&addr.to_string()).unwrap(), addr);
    }

    #[test]
    fn bad_inputs_name_the_value() {
        for text in [
            "",
            "abc",
            "zz@127.0.0.1:1",
            &format!("{}@nope", "ab".repeat(32)),
        ] {
            let err = EndpointAddr::parse(text).unwrap_err().to_string();
            assert!(
                err.contains(&format!("{text:?}")) || err.contains("nope"),
                "{err}"
            );
        }
    }
}
