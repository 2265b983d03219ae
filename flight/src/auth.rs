//! Handshake and bearer tokens.
//!
//! There are no users yet: any username/password is accepted at the handshake and
//! answered with a fresh bearer token (`authorization: Bearer …`), which later calls
//! may carry. A call with no `authorization` header is served; one with an unknown
//! token or scheme is refused with UNAUTHENTICATED, so a stale token is noticed rather
//! than silently ignored. When users exist, `check` is where they are enforced.

use std::collections::{HashSet, VecDeque};
use std::sync::Mutex;

use rand::Rng;
use tonic::metadata::MetadataMap;
use tonic::Status;

/// Tokens remembered at once; the oldest is forgotten first (its client must handshake again).
pub const MAX_TOKENS: usize = 65_536;

#[derive(Default)]
pub struct Tokens {
    inner: Mutex<TokenSet>,
}

#[derive(Default)]
struct TokenSet {
    known: HashSet<String>,
    order: VecDeque<String>,
}

impl Tokens {
    /// Accepts the handshake's credentials (Basic, or none) and issues a token.
    pub fn handshake(&self, metadata: &MetadataMap) -> Result<String, Status> {
        match authorization(metadata)? {
            None | Some(Scheme::Basic) => {}
            Some(Scheme::Bearer(token)) => self.require(&token)?,
        }
        let token: String = {
            let bytes: [u8; 16] = rand::thread_rng().gen();
            bytes.iter().map(|b| format!("{b:02x}")).collect()
        };
        let mut set = self.inner.lock().expect("token set lock");
        if set.order.len() >= MAX_TOKENS {
            if let Some(old) = set.order.pop_front() {
                set.known.remove(&old);
            }
        }
        set.known.insert(token.clone());
        set.order.push_back(token.clone());
        Ok(token)
    }

    /// Admits a call: no credentials, Basic credentials, or a token we issued.
    pub fn check(&self, metadata: &MetadataMap) -> Result<(), Status> {
        match authorization(metadata)? {
            None | Some(Scheme::Basic) => Ok(()),
            Some(Scheme::Bearer(token)) => self.require(&token),
        }
    }

    fn require(&self, token: &str) -> Result<(), Status> {
        if self.inner.lock().expect("token set lock").known.contains(token) {
            Ok(())
        } else {
            Err(Status::unauthenticated("unknown or expired bearer token; handshake again"))
        }
    }
}

enum Scheme {
    Basic,
    Bearer(String),
}

fn authorization(metadata: &MetadataMap) -> Result<Option<Scheme>, Status> {
    let Some(value) = metadata.get("authorization") else { return Ok(None) };
    let value = value.to_str().map_err(|_| Status::unauthenticated("authorization header is not ASCII"))?;
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    if scheme.eq_ignore_ascii_case("basic") {
        Ok(Some(Scheme::Basic))
    } else if scheme.eq_ignore_ascii_case("bearer") {
        Ok(Some(Scheme::Bearer(rest.trim().to_string())))
    } else {
        Err(Status::unauthenticated(format!("unsupported authorization scheme \"{scheme}\"; use Basic or Bearer")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_auth(value: &str) -> MetadataMap {
        let mut m = MetadataMap::new();
        m.insert("authorization", value.parse().unwrap());
        m
    }

    #[test]
    fn issued_tokens_are_accepted_and_others_refused() {
        let tokens = Tokens::default();
        let token = tokens.handshake(&with_auth("Basic dXNlcjpwdw==")).unwrap();
        assert_eq!(token.len(), 32);
        tokens.check(&with_auth(&format!("Bearer {token}"))).unwrap();
        tokens.check(&MetadataMap::new()).unwrap();
        let refused = tokens.check(&with_auth("Bearer nope")).unwrap_err();
        assert_eq!(refused.code(), tonic::Code::Unauthenticated);
        assert_eq!(tokens.check(&with_auth("Digest x")).unwrap_err().code(), tonic::Code::Unauthenticated);
    }
}
