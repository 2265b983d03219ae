//! PostgreSQL's text form of `bytea`: `\x` followed by hex digits, or the older escape
//! form (`\\` for a backslash, `\ooo` octal for any byte). Arrow's string-to-binary cast
//! would keep the text's own bytes, so writes of bytea text go through here.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, BinaryBuilder, StringArray};

use crate::error::{Error, Result};

pub fn decode(text: &str) -> Option<Vec<u8>> {
    if let Some(hex) = text.strip_prefix("\\x") {
        let digits: Vec<u8> = hex.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
        if !digits.len().is_multiple_of(2) {
            return None;
        }
        return digits
            .chunks(2)
            .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok())
            .collect();
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'\\' {
            out.push(bytes[i]);
            i += 1;
        } else if bytes.get(i + 1) == Some(&b'\\') {
            out.push(b'\\');
            i += 2;
        } else {
            let octal = std::str::from_utf8(bytes.get(i + 1..i + 4)?).ok()?;
            out.push(u8::from_str_radix(octal, 8).ok()?);
            i += 4;
        }
    }
    Some(out)
}

/// Decodes a column of bytea text.
pub fn decode_array(text: &StringArray) -> Result<ArrayRef> {
    let mut out = BinaryBuilder::with_capacity(text.len(), text.value_data().len());
    for i in 0..text.len() {
        if text.is_null(i) {
            out.append_null();
            continue;
        }
        let value = text.value(i);
        let bytes = decode(value).ok_or_else(|| Error::InvalidValue(format!("invalid input syntax for type bytea: \"{value}\"")))?;
        out.append_value(bytes);
    }
    Ok(Arc::new(out.finish()))
}

#[cfg(test)]
mod tests {
    use super::decode;

    #[test]
    fn hex_and_escape_forms() {
        assert_eq!(decode("\\x0102ff"), Some(vec![1, 2, 255]));
        assert_eq!(decode("\\x"), Some(vec![]));
        assert_eq!(decode("\\x012"), None);
        assert_eq!(decode("ab\\\\c\\001"), Some(vec![b'a', b'b', b'\\', b'c', 1]));
        assert_eq!(decode("bad\\9"), None);
    }
}
