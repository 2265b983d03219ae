//! Bounded decompression of produced record batches.
//!
//! The codec crate decompresses a batch whole, however large it expands; a small request
//! of highly compressible bytes could make the server allocate gigabytes. Here every codec
//! reads through a limit shared by all batches of one partition of one request, and a
//! batch that would expand past it is refused.

use std::cell::Cell;
use std::io::Read;

use anyhow::{bail, Context, Result};
use bytes::{Buf, Bytes};
use kafka_protocol::records::{Compression, Record, RecordBatchDecoder};

/// Bytes the batches of one partition in one request may expand to (the WAL's record limit
/// is of the same order, so nothing larger could be appended anyway).
pub const MAX_DECOMPRESSED_BYTES: u64 = 256 * 1024 * 1024;

/// The header of xerial-framed snappy, which the Java client writes.
const XERIAL_MAGIC: [u8; 8] = [0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0];
/// Magic, then a version and a compatible-version word.
const XERIAL_HEADER_BYTES: usize = 16;

/// Every record of the batches in `bytes`, decompressed within `limit` bytes in all.
pub fn decode_batches(bytes: &mut Bytes, limit: u64) -> Result<Vec<Record>> {
    let left = Cell::new(limit);
    let mut records = Vec::new();
    while bytes.has_remaining() {
        let set = RecordBatchDecoder::decode_with_custom_compression(
            bytes,
            Some(|compressed: &mut Bytes, codec: Compression| -> Result<Bytes> {
                let out = decompress(compressed, codec, left.get())?;
                left.set(left.get() - out.len() as u64);
                Ok(out)
            }),
        )?;
        records.extend(set.records);
    }
    Ok(records)
}

fn decompress(compressed: &mut Bytes, codec: Compression, limit: u64) -> Result<Bytes> {
    let input = compressed.split_to(compressed.remaining());
    match codec {
        Compression::None => {
            if input.len() as u64 > limit {
                bail!("record batches larger than {MAX_DECOMPRESSED_BYTES} bytes");
            }
            Ok(input)
        }
        Compression::Gzip => read_limited(flate2::read::GzDecoder::new(&input[..]), limit),
        Compression::Zstd => read_limited(zstd::stream::read::Decoder::new(&input[..]).context("zstd")?, limit),
        Compression::Lz4 => read_limited(lz4::Decoder::new(&input[..]).context("lz4")?, limit),
        Compression::Snappy => snappy(&input, limit),
    }
}

/// Reads all of `reader`, refusing more than `limit` bytes.
fn read_limited(reader: impl Read, limit: u64) -> Result<Bytes> {
    let mut out = Vec::new();
    reader.take(limit + 1).read_to_end(&mut out).context("the compressed batch does not decode")?;
    if out.len() as u64 > limit {
        bail!("compressed record batches expand past {MAX_DECOMPRESSED_BYTES} bytes");
    }
    Ok(out.into())
}

/// Snappy, xerial-framed (blocks of `[length u32][raw block]` after a header) or raw.
fn snappy(input: &[u8], limit: u64) -> Result<Bytes> {
    let mut out = Vec::new();
    let block = |raw: &[u8], out: &mut Vec<u8>| -> Result<()> {
        let len = snap::raw::decompress_len(raw).context("snappy block length")?;
        if (out.len() + len) as u64 > limit {
            bail!("compressed record batches expand past {MAX_DECOMPRESSED_BYTES} bytes");
        }
        let start = out.len();
        out.resize(start + len, 0);
        snap::raw::Decoder::new().decompress(raw, &mut out[start..]).context("snappy block")?;
        Ok(())
    };
    if input.len() < XERIAL_HEADER_BYTES || input[..XERIAL_MAGIC.len()] != XERIAL_MAGIC {
        block(input, &mut out)?;
        return Ok(out.into());
    }
    let mut rest = &input[XERIAL_HEADER_BYTES..];
    while !rest.is_empty() {
        if rest.len() < 4 {
            bail!("truncated snappy block length");
        }
        let len = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        let raw = rest.get(4..4 + len).context("truncated snappy block")?;
        block(raw, &mut out)?;
        rest = &rest[4 + len..];
    }
    Ok(out.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use indexmap::IndexMap;
    use kafka_protocol::records::{RecordBatchEncoder, RecordEncodeOptions};

    fn batch(codec: Compression, value: Bytes, count: usize) -> Bytes {
        let records: Vec<Record> = (0..count)
            .map(|i| crate::records::record(i as i64, i as i32 - 1, 0, None, Some(value.clone()), IndexMap::new()))
            .collect();
        let mut buf = BytesMut::new();
        RecordBatchEncoder::encode(&mut buf, records.iter(), &RecordEncodeOptions { version: 2, compression: codec }).unwrap();
        buf.freeze()
    }

    #[test]
    fn every_codec_round_trips() {
        for codec in [Compression::None, Compression::Gzip, Compression::Snappy, Compression::Lz4, Compression::Zstd] {
            let mut bytes = batch(codec, Bytes::from_static(b"hello, world"), 100);
            let records = decode_batches(&mut bytes, MAX_DECOMPRESSED_BYTES).unwrap();
            assert_eq!(records.len(), 100, "{codec:?}");
            assert_eq!(records[99].value.as_deref(), Some(&b"hello, world"[..]));
        }
    }

    #[test]
    fn expansion_past_the_limit_is_refused() {
        // 64 records of 64 KiB of zeros: a few hundred compressed bytes, 4 MiB expanded.
        for codec in [Compression::Gzip, Compression::Snappy, Compression::Lz4, Compression::Zstd] {
            let mut bytes = batch(codec, Bytes::from(vec![0u8; 64 * 1024]), 64);
            let err = decode_batches(&mut bytes, 1024 * 1024).unwrap_err();
            assert!(format!("{err:#}").contains("expand past"), "{codec:?}: {err:#}");
        }
    }
}
