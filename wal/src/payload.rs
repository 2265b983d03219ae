//! A record's payload, possibly in several parts.
//!
//! A writer that builds a large record out of separately allocated buffers (Arrow IPC
//! bodies of a bulk COPY, tens of MiB) hands them over as they are, instead of first
//! copying them into one more freshly allocated buffer: that copy, page faults included,
//! was ~15% of server CPU in a bulk COPY. On disk a payload is the concatenation of its
//! parts; recovery returns it as one buffer.

/// The bytes of one record, as a list of parts.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Payload {
    parts: Vec<Vec<u8>>,
    len: usize,
}

impl Payload {
    pub fn new() -> Self {
        Payload::default()
    }

    /// Appends a part (empty parts are dropped).
    pub fn push(&mut self, part: Vec<u8>) {
        if !part.is_empty() {
            self.len += part.len();
            self.parts.push(part);
        }
    }

    /// Total bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn parts(&self) -> &[Vec<u8>] {
        &self.parts
    }

    /// The parts, concatenated.
    pub fn to_vec(&self) -> Vec<u8> {
        self.parts.concat()
    }

    /// CRC32C of the concatenated parts.
    pub(crate) fn crc(&self) -> u32 {
        self.parts
            .iter()
            .fold(0, |crc, part| crc32c::crc32c_append(crc, part))
    }
}

impl From<Vec<u8>> for Payload {
    fn from(bytes: Vec<u8>) -> Self {
        let mut payload = Payload::new();
        payload.push(bytes);
        payload
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_checksum_like_their_concatenation() {
        let mut payload = Payload::new();
        payload.push(b"hello ".to_vec());
        payload.push(Vec::new());
        payload.push(b"world".to_vec());
        assert_eq!(payload.parts().len(), 2, "empty parts are dropped");
        assert_eq!(payload.len(), 11);
        assert_eq!(payload.to_vec(), b"hello world");
        assert_eq!(payload.crc(), crate::format::payload_crc(b"hello world"));
        assert_eq!(Payload::from(b"hello world".to_vec()).crc(), payload.crc());
    }
}
