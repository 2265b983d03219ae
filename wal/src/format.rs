//! On-disk format: the file header block and the record framing.
//!
//! File layout:
//! ```text
//! [ header block, FILE_HEADER_SIZE bytes ][ record ][ record ] ... [ zeros or stale bytes ]
//! ```
//! Header block (little endian), the rest of the block is zero:
//! ```text
//! magic[8] | version u32 | reserved u32 | file_seq u64 | first_lsn u64 | crc32c u32 (of the 32 bytes before)
//! ```
//! The header names its own `file_seq` so that a recycled file whose header was not yet
//! rewritten (crash between rename and header write) is recognised as unused. It takes a
//! whole block so that records start block-aligned and rewriting it never touches records.
//!
//! Record (little endian):
//! ```text
//! crc32c u32 | len u32 | lsn u64 | payload[len]
//! ```
//! The checksum covers the payload, then `lsn` and `len`: the payload part is computed by the
//! appending task before it is queued (many tasks checksum in parallel instead of the single
//! writer thread), and is completed with the LSN once that is assigned. Recovery accepts a
//! record only if the checksum matches, the length fits in the file and the LSN is exactly
//! the next expected one; stale records of a recycled file always carry older LSNs, and a
//! zeroed region decodes as LSN 0, which is never valid.

use crate::Lsn;

/// Bytes reserved for the file header; records start at this offset.
pub const FILE_HEADER_SIZE: u64 = 4096;

/// Bytes of framing in front of every payload.
pub const RECORD_HEADER_SIZE: usize = 16;

const MAGIC: [u8; 8] = *b"SHSEWAL\0";
const FORMAT_VERSION: u32 = 1;
/// Bytes of the header block covered by its checksum (everything before the checksum).
const HEADER_CHECKED_BYTES: usize = 32;

/// Identity of a log file, stored in its header block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FileHeader {
    pub file_seq: u64,
    /// LSN of the first record the file holds (or would hold, if it is empty).
    pub first_lsn: Lsn,
}

impl FileHeader {
    /// The full header block, ready to be written at offset 0.
    pub fn encode(&self) -> Vec<u8> {
        let mut block = vec![0u8; FILE_HEADER_SIZE as usize];
        block[0..8].copy_from_slice(&MAGIC);
        block[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        block[16..24].copy_from_slice(&self.file_seq.to_le_bytes());
        block[24..32].copy_from_slice(&self.first_lsn.to_le_bytes());
        let crc = crc32c::crc32c(&block[..HEADER_CHECKED_BYTES]);
        block[32..36].copy_from_slice(&crc.to_le_bytes());
        block
    }

    /// `None` when the bytes are not an intact header of this format (zeros, torn, foreign).
    pub fn decode(bytes: &[u8]) -> Option<FileHeader> {
        if bytes.len() < HEADER_CHECKED_BYTES + 4 || bytes[0..8] != MAGIC {
            return None;
        }
        let stored_crc = u32::from_le_bytes(bytes[32..36].try_into().ok()?);
        if crc32c::crc32c(&bytes[..HEADER_CHECKED_BYTES]) != stored_crc {
            return None;
        }
        if u32::from_le_bytes(bytes[8..12].try_into().ok()?) != FORMAT_VERSION {
            return None;
        }
        let header = FileHeader {
            file_seq: u64::from_le_bytes(bytes[16..24].try_into().ok()?),
            first_lsn: u64::from_le_bytes(bytes[24..32].try_into().ok()?),
        };
        // LSN 0 means "nothing"; a header claiming it was not written by this code.
        (header.first_lsn != 0).then_some(header)
    }
}

/// The checksum of the payload alone, computed by the appending task.
pub(crate) fn payload_crc(payload: &[u8]) -> u32 {
    crc32c::crc32c(payload)
}

/// Completes a payload checksum with the fields of the record header.
fn record_crc(payload_crc: u32, lsn: Lsn, len: u32) -> u32 {
    let mut fields = [0u8; 12];
    fields[0..8].copy_from_slice(&lsn.to_le_bytes());
    fields[8..12].copy_from_slice(&len.to_le_bytes());
    crc32c::crc32c_append(payload_crc, &fields)
}

/// The framing written in front of a payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RecordHeader {
    pub crc: u32,
    pub len: u32,
    pub lsn: Lsn,
}

impl RecordHeader {
    /// Frames a payload of `len` bytes whose own checksum is `payload_crc`.
    pub fn new(lsn: Lsn, len: u32, payload_crc: u32) -> RecordHeader {
        RecordHeader {
            crc: record_crc(payload_crc, lsn, len),
            len,
            lsn,
        }
    }

    pub fn encode(&self) -> [u8; RECORD_HEADER_SIZE] {
        let mut out = [0u8; RECORD_HEADER_SIZE];
        out[0..4].copy_from_slice(&self.crc.to_le_bytes());
        out[4..8].copy_from_slice(&self.len.to_le_bytes());
        out[8..16].copy_from_slice(&self.lsn.to_le_bytes());
        out
    }

    pub fn decode(bytes: &[u8; RECORD_HEADER_SIZE]) -> RecordHeader {
        let u32_at =
            |i: usize| u32::from_le_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
        let mut lsn = [0u8; 8];
        lsn.copy_from_slice(&bytes[8..16]);
        RecordHeader {
            crc: u32_at(0),
            len: u32_at(4),
            lsn: u64::from_le_bytes(lsn),
        }
    }

    /// True when `payload` is exactly what was framed by this header.
    pub fn matches(&self, payload: &[u8]) -> bool {
        payload.len() == self.len as usize
            && record_crc(payload_crc(payload), self.lsn, self.len) == self.crc
    }

    /// Bytes the framed record occupies in the file.
    pub fn total_len(&self) -> u64 {
        RECORD_HEADER_SIZE as u64 + u64::from(self.len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_header_round_trips_and_rejects_damage() {
        let header = FileHeader {
            file_seq: 42,
            first_lsn: 1_000_001,
        };
        let block = header.encode();
        assert_eq!(block.len() as u64, FILE_HEADER_SIZE);
        assert_eq!(FileHeader::decode(&block), Some(header));

        for i in 0..36 {
            let mut damaged = block.clone();
            damaged[i] ^= 0x01;
            assert_eq!(
                FileHeader::decode(&damaged),
                None,
                "flipped bit in byte {i} went unnoticed"
            );
        }
        assert_eq!(
            FileHeader::decode(&vec![0u8; FILE_HEADER_SIZE as usize]),
            None
        );
        assert_eq!(FileHeader::decode(&block[..20]), None);
        assert_eq!(
            FileHeader::decode(
                &FileHeader {
                    file_seq: 1,
                    first_lsn: 0
                }
                .encode()
            ),
            None
        );
    }

    #[test]
    fn record_header_round_trips_and_checks_every_field() {
        let payload = b"hello, write-ahead log".to_vec();
        let header = RecordHeader::new(7, payload.len() as u32, payload_crc(&payload));
        let decoded = RecordHeader::decode(&header.encode());
        assert_eq!(decoded, header);
        assert!(decoded.matches(&payload));
        assert_eq!(
            decoded.total_len(),
            (RECORD_HEADER_SIZE + payload.len()) as u64
        );

        let mut other = payload.clone();
        other[3] ^= 0x80;
        assert!(!decoded.matches(&other), "payload damage");
        assert!(
            !RecordHeader { lsn: 8, ..decoded }.matches(&payload),
            "lsn is covered"
        );
        assert!(
            !decoded.matches(&payload[..payload.len() - 1]),
            "length is covered"
        );
    }

    #[test]
    fn zeroed_bytes_never_decode_as_a_valid_record() {
        let zeros = RecordHeader::decode(&[0u8; RECORD_HEADER_SIZE]);
        assert_eq!(zeros.lsn, 0);
        assert!(!zeros.matches(&[]));
    }

    #[test]
    fn empty_payload_is_a_valid_record() {
        let header = RecordHeader::new(1, 0, payload_crc(&[]));
        assert!(RecordHeader::decode(&header.encode()).matches(&[]));
    }
}
