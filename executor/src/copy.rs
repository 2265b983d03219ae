//! `COPY`: the text and CSV formats of Postgres, decoded into Arrow batches and encoded
//! from them.
//!
//! Decoding is incremental (the front end feeds CopyData chunks as they arrive); values
//! arrive as text and are cast to the column types strictly, so a bad value fails the
//! whole COPY with SQLSTATE 22P02 and nothing of it is written.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, RecordBatch, StringBuilder};
use arrow::compute::{cast_with_options, CastOptions};
use arrow::datatypes::{DataType, SchemaRef};
use arrow::array::timezone::Tz;
use arrow::util::display::{ArrayFormatter, FormatOptions};

use crate::pg_text::{needs_pg_text, to_pg_text};
use datafusion::sql::sqlparser::ast::{CopyLegacyCsvOption, CopyLegacyOption, CopyOption};

use crate::error::{Error, Result};

/// Rows per decoded batch.
pub const COPY_BATCH_ROWS: usize = 64 * 1024;
/// A COPY FROM is held in memory until it completes (so a failed or abandoned COPY
/// leaves nothing behind) and is then written as one WAL record (so a crash leaves all of
/// it or none); beyond this it is refused and should be split. The server sizes the WAL's
/// record limit from it.
pub const COPY_MAX_BUFFER_BYTES: usize = 256 * 1024 * 1024;
/// A single COPY row (one line) may not be longer than this.
pub const COPY_MAX_LINE_BYTES: usize = 16 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyFormat {
    /// PostgreSQL's binary COPY format (COPY TO only; the front end encodes it).
    pub binary: bool,
    pub csv: bool,
    pub delimiter: u8,
    pub null: String,
    pub header: bool,
    pub quote: u8,
    pub escape: u8,
}

impl Default for CopyFormat {
    fn default() -> Self {
        CopyFormat { binary: false, csv: false, delimiter: b'\t', null: "\\N".into(), header: false, quote: b'"', escape: b'"' }
    }
}

impl CopyFormat {
    pub fn from_options(options: &[CopyOption], legacy: &[CopyLegacyOption]) -> Result<Self> {
        let mut f = CopyFormat::default();
        let mut delimiter = None;
        let mut null = None;
        for o in options {
            match o {
                CopyOption::Format(ident) => match ident.value.to_lowercase().as_str() {
                    "text" => (f.csv, f.binary) = (false, false),
                    "csv" => (f.csv, f.binary) = (true, false),
                    "binary" => (f.csv, f.binary) = (false, true),
                    other => return Err(Error::InvalidParameter(format!("COPY format \"{other}\" not recognized"))),
                },
                CopyOption::Delimiter(c) => delimiter = Some(ascii(*c, "DELIMITER")?),
                CopyOption::Null(s) => null = Some(s.clone()),
                CopyOption::Header(h) => f.header = *h,
                CopyOption::Quote(c) => f.quote = ascii(*c, "QUOTE")?,
                CopyOption::Escape(c) => f.escape = ascii(*c, "ESCAPE")?,
                CopyOption::Encoding(e) if e.eq_ignore_ascii_case("utf8") || e.eq_ignore_ascii_case("utf-8") => {}
                other => return Err(Error::not_supported(format!("COPY option {other} is not supported"), "remove the option")),
            }
        }
        for o in legacy {
            match o {
                CopyLegacyOption::Csv(csv_opts) => {
                    f.csv = true;
                    for c in csv_opts {
                        match c {
                            CopyLegacyCsvOption::Header => f.header = true,
                            CopyLegacyCsvOption::Quote(q) => f.quote = ascii(*q, "QUOTE")?,
                            CopyLegacyCsvOption::Escape(e) => f.escape = ascii(*e, "ESCAPE")?,
                            other => {
                                return Err(Error::not_supported(format!("COPY option {other} is not supported"), "remove the option"))
                            }
                        }
                    }
                }
                CopyLegacyOption::Binary => f.binary = true,
                CopyLegacyOption::Delimiter(c) => delimiter = Some(ascii(*c, "DELIMITER")?),
                CopyLegacyOption::Null(s) => null = Some(s.clone()),
                other => return Err(Error::not_supported(format!("COPY option {other} is not supported"), "remove the option")),
            }
        }
        if f.binary {
            // As PostgreSQL: the text/CSV options make no sense in binary mode.
            let text_only = [(delimiter.is_some(), "DELIMITER"), (null.is_some(), "NULL"), (f.header, "HEADER")];
            if let Some((_, option)) = text_only.iter().find(|(given, _)| *given) {
                return Err(Error::Syntax { message: format!("cannot specify {option} in BINARY mode"), position: None });
            }
        }
        f.delimiter = delimiter.unwrap_or(if f.csv { b',' } else { b'\t' });
        f.null = null.unwrap_or_else(|| if f.csv { String::new() } else { "\\N".into() });
        if f.header && !f.csv {
            return Err(Error::InvalidParameter("COPY HEADER available only in CSV mode".into()));
        }
        Ok(f)
    }
}

fn ascii(c: char, what: &str) -> Result<u8> {
    if c.is_ascii() {
        Ok(c as u8)
    } else {
        Err(Error::InvalidParameter(format!("COPY {what} must be a single one-byte character")))
    }
}

/// Incremental decoder of COPY FROM data into batches of `schema` (the listed columns).
pub struct CopyDecoder {
    format: CopyFormat,
    schema: SchemaRef,
    pending: Vec<u8>,
    builders: Vec<StringBuilder>,
    rows_in_builders: usize,
    line: u64,
    header_skipped: bool,
    finished: bool,
    batches: Vec<RecordBatch>,
    rows: u64,
}

impl CopyDecoder {
    pub fn new(format: CopyFormat, schema: SchemaRef) -> Self {
        let builders = (0..schema.fields().len()).map(|_| StringBuilder::new()).collect();
        CopyDecoder {
            header_skipped: !format.header,
            format,
            schema,
            pending: Vec::new(),
            builders,
            rows_in_builders: 0,
            line: 0,
            finished: false,
            batches: Vec::new(),
            rows: 0,
        }
    }

    pub fn rows(&self) -> u64 {
        self.rows + self.rows_in_builders as u64
    }

    /// Memory held by decoded batches so far.
    pub fn buffered_bytes(&self) -> usize {
        self.batches.iter().map(|b| b.get_array_memory_size()).sum::<usize>() + self.pending.len()
    }

    pub fn feed(&mut self, data: &[u8]) -> Result<()> {
        if !self.format.csv {
            return self.feed_text(data);
        }
        self.pending.extend_from_slice(data);
        // Taken out so records can be borrowed from it while the builders are filled.
        let mut pending = std::mem::take(&mut self.pending);
        let mut start = 0;
        let mut result = Ok(());
        while !self.finished {
            let Some(end) = self.record_end(&pending, start) else { break };
            result = self.record(&pending[start..end]);
            start = end + 1;
            if result.is_err() {
                break;
            }
        }
        pending.drain(..start);
        self.pending = pending;
        result?;
        self.check_pending_line()
    }

    /// [`CopyDecoder::feed`] for the text format, where a newline always ends a record: whole
    /// records are decoded straight from `data`, only a record cut by the chunk's end is
    /// copied (bulk loads arrive as MiB-sized chunks, so copying each into `pending` first
    /// was a full extra pass over the input).
    fn feed_text(&mut self, data: &[u8]) -> Result<()> {
        let mut data = data;
        if !self.pending.is_empty() && !self.finished {
            let Some(end) = memchr::memchr(b'\n', data) else {
                self.pending.extend_from_slice(data);
                return self.check_pending_line();
            };
            self.pending.extend_from_slice(&data[..end]);
            let record = std::mem::take(&mut self.pending);
            self.record(&record)?;
            data = &data[end + 1..];
        }
        let mut start = 0;
        for end in memchr::memchr_iter(b'\n', data) {
            if self.finished {
                break;
            }
            self.record(&data[start..end])?;
            start = end + 1;
        }
        if !self.finished {
            self.pending.extend_from_slice(&data[start..]);
        }
        self.check_pending_line()
    }

    fn check_pending_line(&self) -> Result<()> {
        if self.pending.len() > COPY_MAX_LINE_BYTES {
            return Err(Error::InvalidParameter(format!(
                "COPY line {} is longer than {COPY_MAX_LINE_BYTES} bytes",
                self.line + 1
            )));
        }
        Ok(())
    }

    /// Ends the input and returns every decoded batch.
    pub fn finish(mut self) -> Result<Vec<RecordBatch>> {
        if !self.finished && !self.pending.is_empty() {
            let mut rest = std::mem::take(&mut self.pending);
            if rest.last() == Some(&b'\r') {
                rest.pop();
            }
            self.record(&rest)?;
        }
        self.flush_builders()?;
        Ok(self.batches)
    }

    /// Index of the newline ending the record starting at `start` (quotes respected in CSV).
    fn record_end(&self, pending: &[u8], start: usize) -> Option<usize> {
        let buf = &pending[start..];
        if !self.format.csv {
            return buf.iter().position(|&b| b == b'\n').map(|i| start + i);
        }
        let mut in_quotes = false;
        let mut i = 0;
        while i < buf.len() {
            let b = buf[i];
            if in_quotes {
                if b == self.format.escape && self.format.escape != self.format.quote && i + 1 < buf.len() {
                    i += 2;
                    continue;
                }
                if b == self.format.quote {
                    if self.format.escape == self.format.quote && buf.get(i + 1) == Some(&self.format.quote) {
                        i += 2;
                        continue;
                    }
                    in_quotes = false;
                }
            } else if b == self.format.quote {
                in_quotes = true;
            } else if b == b'\n' {
                return Some(start + i);
            }
            i += 1;
        }
        None
    }

    fn record(&mut self, raw: &[u8]) -> Result<()> {
        self.line += 1;
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        if raw == b"\\." {
            self.finished = true;
            return Ok(());
        }
        if !self.header_skipped {
            self.header_skipped = true;
            return Ok(());
        }
        if !self.format.csv {
            return self.text_record(raw);
        }
        let fields = self.split_csv(raw)?;
        if fields.len() != self.builders.len() {
            let what = if fields.len() > self.builders.len() {
                "extra data after last expected column"
            } else {
                "missing data for a column"
            };
            return Err(Error::BadCopyData(format!("{what} (COPY line {})", self.line)));
        }
        for (b, f) in self.builders.iter_mut().zip(fields) {
            match f {
                Some(v) => b.append_value(v),
                None => b.append_null(),
            }
        }
        self.rows_in_builders += 1;
        if self.rows_in_builders >= COPY_BATCH_ROWS {
            self.flush_builders()?;
        }
        Ok(())
    }

    /// Text format straight into the builders: the record is checked as UTF-8 once, and
    /// fields without escapes are not copied twice.
    fn text_record(&mut self, raw: &[u8]) -> Result<()> {
        let text = std::str::from_utf8(raw).map_err(|_| self.bad_encoding())?;
        let delimiter = self.format.delimiter;
        let mut column = 0;
        if memchr::memchr(b'\\', raw).is_none() {
            for field in text.split(char::from(delimiter)) {
                self.text_field(column, field)?;
                column += 1;
            }
        } else {
            for field in split_escaped(text, delimiter) {
                self.text_field(column, field)?;
                column += 1;
            }
        }
        if column != self.builders.len() {
            return Err(Error::BadCopyData(format!("missing data for a column (COPY line {})", self.line)));
        }
        self.rows_in_builders += 1;
        if self.rows_in_builders >= COPY_BATCH_ROWS {
            self.flush_builders()?;
        }
        Ok(())
    }

    /// One field as it appears in the line: the NULL marker is matched before escapes are
    /// undone, as in PostgreSQL.
    fn text_field(&mut self, column: usize, field: &str) -> Result<()> {
        if column == self.builders.len() {
            return Err(Error::BadCopyData(format!("extra data after last expected column (COPY line {})", self.line)));
        }
        if field == self.format.null {
            self.builders[column].append_null();
        } else if field.contains('\\') {
            let unescaped = String::from_utf8(unescape_text(field.as_bytes())).map_err(|_| self.bad_encoding())?;
            self.builders[column].append_value(unescaped);
        } else {
            self.builders[column].append_value(field);
        }
        Ok(())
    }

    fn bad_encoding(&self) -> Error {
        Error::BadCopyData(format!("invalid byte sequence for encoding \"UTF8\" (COPY line {})", self.line))
    }

    fn split_csv(&self, raw: &[u8]) -> Result<Vec<Option<String>>> {
        let (q, e, d) = (self.format.quote, self.format.escape, self.format.delimiter);
        let mut fields = Vec::new();
        let mut field = Vec::new();
        let mut quoted = false;
        let mut in_quotes = false;
        let mut i = 0;
        while i < raw.len() {
            let b = raw[i];
            if in_quotes {
                // Inside quotes the escape character protects a quote (or, when it is not
                // the quote itself, another escape character).
                let next = raw.get(i + 1).copied();
                if b == e && (next == Some(q) || (e != q && next == Some(e))) {
                    field.push(next.expect("checked"));
                    i += 2;
                    continue;
                }
                if b == q {
                    in_quotes = false;
                } else {
                    field.push(b);
                }
            } else if b == q {
                in_quotes = true;
                quoted = true;
            } else if b == d {
                fields.push(self.csv_value(std::mem::take(&mut field), quoted)?);
                quoted = false;
            } else {
                field.push(b);
            }
            i += 1;
        }
        if in_quotes {
            return Err(Error::BadCopyData(format!("unterminated CSV quoted field (COPY line {})", self.line)));
        }
        fields.push(self.csv_value(field, quoted)?);
        Ok(fields)
    }

    fn csv_value(&self, field: Vec<u8>, quoted: bool) -> Result<Option<String>> {
        if !quoted && field == self.format.null.as_bytes() {
            return Ok(None);
        }
        self.utf8(field).map(Some)
    }

    fn utf8(&self, bytes: Vec<u8>) -> Result<String> {
        String::from_utf8(bytes).map_err(|_| self.bad_encoding())
    }

    fn flush_builders(&mut self) -> Result<()> {
        if self.rows_in_builders == 0 {
            return Ok(());
        }
        let strict = CastOptions { safe: false, ..Default::default() };
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(self.builders.len());
        for (b, field) in self.builders.iter_mut().zip(self.schema.fields()) {
            let finished = b.finish();
            // The next batch is likely the same size: no regrowth while it fills.
            *b = StringBuilder::with_capacity(COPY_BATCH_ROWS, finished.value_data().len());
            let text: ArrayRef = Arc::new(finished);
            let typed = if field.data_type() == &DataType::Utf8 {
                text
            } else if field.data_type() == &DataType::Binary {
                crate::bytea::decode_array(text.as_any().downcast_ref().expect("built as strings"))?
            } else if matches!(field.data_type(), DataType::Timestamp(..)) {
                // Also reads times without seconds, as PostgreSQL does.
                crate::cast::to_column_type(&text, field)?
            } else {
                cast_with_options(&text, field.data_type(), &strict).map_err(|e| {
                    Error::InvalidValue(format!("invalid input for column \"{}\" ({}): {e}", field.name(), field.data_type()))
                })?
            };
            columns.push(typed);
        }
        self.batches.push(RecordBatch::try_new(self.schema.clone(), columns)?);
        self.rows += self.rows_in_builders as u64;
        self.rows_in_builders = 0;
        Ok(())
    }
}

/// Splits a text-format line at its delimiters; a backslash protects the byte after it
/// (`a\,b` with DELIMITER ',' is one field). Both are ASCII, so every cut is on a
/// character boundary.
fn split_escaped(line: &str, delimiter: u8) -> Vec<&str> {
    let bytes = line.as_bytes();
    let mut fields = Vec::new();
    let (mut start, mut i) = (0, 0);
    while i < bytes.len() {
        if bytes[i] == b'\\' {
            i += 2;
            continue;
        }
        if bytes[i] == delimiter {
            fields.push(&line[start..i]);
            start = i + 1;
        }
        i += 1;
    }
    fields.push(&line[start.min(line.len())..]);
    fields
}

/// Undoes the text format's backslash escapes: `\b \f \n \r \t \v`, one to three octal
/// digits, `\x` and one or two hex digits; any other escaped character stands for itself.
fn unescape_text(field: &[u8]) -> Vec<u8> {
    let digits = |from: usize, max: usize, radix: u32| {
        let run = field[from..].iter().take(max).take_while(|b| char::from(**b).is_digit(radix)).count();
        let value = field[from..from + run].iter().fold(0u32, |v, b| v * radix + char::from(*b).to_digit(radix).unwrap_or(0));
        (run, value as u8)
    };
    let mut out = Vec::with_capacity(field.len());
    let mut i = 0;
    while i < field.len() {
        let b = field[i];
        if b != b'\\' || i + 1 == field.len() {
            out.push(b);
            i += 1;
            continue;
        }
        let escaped = field[i + 1];
        i += 2;
        match escaped {
            b'0'..=b'7' => {
                let (run, value) = digits(i - 1, 3, 8);
                out.push(value);
                i += run - 1;
            }
            b'x' if field.get(i).is_some_and(|d| d.is_ascii_hexdigit()) => {
                let (run, value) = digits(i, 2, 16);
                out.push(value);
                i += run;
            }
            b'b' => out.push(8),
            b'f' => out.push(12),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'v' => out.push(11),
            other => out.push(other),
        }
    }
    out
}

/// Encodes one batch in COPY text or CSV format.
pub fn encode_batch(batch: &RecordBatch, format: &CopyFormat, zone: &Tz, out: &mut Vec<u8>) -> Result<()> {
    let mut all = Vec::new();
    encode_rows(batch, format, zone, |row| all.extend_from_slice(row))?;
    out.extend_from_slice(&all);
    Ok(())
}

/// Encodes a batch row by row, handing each encoded line (with its newline) to `emit`.
/// Values are in PostgreSQL's text forms; `zone` is the session's, for timestamptz.
pub fn encode_rows(batch: &RecordBatch, format: &CopyFormat, zone: &Tz, mut emit: impl FnMut(&[u8])) -> Result<()> {
    let options = FormatOptions::default().with_null(&format.null);
    let columns: Vec<ArrayRef> = batch
        .columns()
        .iter()
        .map(|c| if needs_pg_text(c.data_type()) { to_pg_text(c, zone) } else { c.clone() })
        .collect();
    let formatters: Vec<ArrayFormatter> = columns
        .iter()
        .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
        .collect::<std::result::Result<_, _>>()?;
    let mut value = String::new();
    let mut out = Vec::new();
    for row in 0..batch.num_rows() {
        out.clear();
        for (i, (f, column)) in formatters.iter().zip(&columns).enumerate() {
            if i > 0 {
                out.push(format.delimiter);
            }
            if column.is_null(row) {
                out.extend_from_slice(format.null.as_bytes());
                continue;
            }
            value.clear();
            if let Some(b) = column.as_any().downcast_ref::<arrow::array::BooleanArray>() {
                value.push_str(if b.value(row) { "t" } else { "f" });
            } else {
                use std::fmt::Write;
                let _ = write!(value, "{}", f.value(row));
            }
            if format.csv {
                write_csv_field(&value, format, &mut out);
            } else {
                write_text_field(&value, &mut out);
            }
        }
        out.push(b'\n');
        emit(&out);
    }
    Ok(())
}

fn write_text_field(v: &str, out: &mut Vec<u8>) {
    for b in v.bytes() {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            _ => out.push(b),
        }
    }
}

fn write_csv_field(v: &str, format: &CopyFormat, out: &mut Vec<u8>) {
    let needs_quotes = v.is_empty()
        || v == format.null
        || v.bytes().any(|b| b == format.delimiter || b == format.quote || b == b'\n' || b == b'\r');
    if !needs_quotes {
        out.extend_from_slice(v.as_bytes());
        return;
    }
    out.push(format.quote);
    for b in v.bytes() {
        if b == format.quote || b == format.escape {
            out.push(format.escape);
        }
        out.push(b);
    }
    out.push(format.quote);
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int32Array, StringArray};
    use arrow::datatypes::{Field, Schema};

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![Field::new("id", DataType::Int32, true), Field::new("s", DataType::Utf8, true)]))
    }

    #[test]
    fn text_round_trip_with_escapes_and_nulls() {
        let mut d = CopyDecoder::new(CopyFormat::default(), schema());
        d.feed(b"1\ta\\tb\n2\t\\N\n3").unwrap();
        d.feed(b"\tx\n").unwrap();
        let batches = d.finish().unwrap();
        let b = &batches[0];
        assert_eq!(b.num_rows(), 3);
        assert_eq!(b.column(0).as_any().downcast_ref::<Int32Array>().unwrap().values(), &[1, 2, 3]);
        let s = b.column(1).as_any().downcast_ref::<StringArray>().unwrap();
        assert_eq!(s.value(0), "a\tb");
        assert!(s.is_null(1));
        let mut out = Vec::new();
        encode_batch(b, &CopyFormat::default(), &"UTC".parse().unwrap(), &mut out).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "1\ta\\tb\n2\t\\N\n3\tx\n");
    }

    #[test]
    fn csv_with_header_quotes_and_embedded_newline() {
        let f = CopyFormat { csv: true, delimiter: b',', null: String::new(), header: true, ..Default::default() };
        let mut d = CopyDecoder::new(f, schema());
        d.feed(b"id,s\n1,\"a,\"\"b\"\"\nc\"\n2,\n3,\"\"\n").unwrap();
        let b = &d.finish().unwrap()[0];
        let s = b.column(1).as_any().downcast_ref::<StringArray>().unwrap();
        assert_eq!(s.value(0), "a,\"b\"\nc");
        assert!(s.is_null(1));
        assert_eq!(s.value(2), "");
    }

    #[test]
    fn bad_values_and_column_counts_are_errors() {
        let mut d = CopyDecoder::new(CopyFormat::default(), schema());
        d.feed(b"abc\tx\n").unwrap();
        assert!(matches!(d.finish(), Err(Error::InvalidValue(_))));
        let mut d = CopyDecoder::new(CopyFormat::default(), schema());
        assert!(matches!(d.feed(b"1\tx\textra\n"), Err(Error::BadCopyData(_))));
    }

    #[test]
    fn text_decodes_the_same_however_the_input_is_chunked() {
        let input: &[u8] = b"1\ta\\tb\r\n2\t\\N\n3\t\xc3\xa9t\xc3\xa9\n4\t\n\\.\n5\tafter the end marker\n";
        let decode = |chunk: usize| {
            let mut d = CopyDecoder::new(CopyFormat::default(), schema());
            for piece in input.chunks(chunk) {
                d.feed(piece).unwrap();
            }
            let batches = d.finish().unwrap();
            arrow::compute::concat_batches(&schema(), &batches).unwrap()
        };
        let whole = decode(input.len());
        assert_eq!(whole.num_rows(), 4, "rows after \\. are ignored");
        let s = whole.column(1).as_any().downcast_ref::<StringArray>().unwrap();
        assert_eq!((s.value(0), s.is_null(1), s.value(2), s.value(3)), ("a\tb", true, "été", ""));
        for chunk in [1, 2, 3, 5, 8, 13] {
            assert_eq!(decode(chunk), whole, "chunks of {chunk} bytes");
        }
    }

    #[test]
    fn text_errors_name_the_line_and_bad_utf8_is_refused() {
        let mut d = CopyDecoder::new(CopyFormat::default(), schema());
        d.feed(b"1\tok\n2\t\xff\n").unwrap_err();
        let mut d = CopyDecoder::new(CopyFormat::default(), schema());
        d.feed(b"1\tok\n2").unwrap();
        match d.feed(b"\n") {
            Err(Error::BadCopyData(message)) => assert!(message.contains("COPY line 2"), "{message}"),
            other => panic!("expected a missing column on line 2, got {other:?}"),
        }
    }

    #[test]
    fn text_escapes_protect_the_delimiter_and_spell_bytes() {
        let format = CopyFormat { delimiter: b',', ..Default::default() };
        let mut d = CopyDecoder::new(format, schema());
        d.feed(b"1,a\\,b\n2,\\101\\x42\\x\\7\\\\\n3,\\N\n").unwrap();
        let b = &d.finish().unwrap()[0];
        let s = b.column(1).as_any().downcast_ref::<StringArray>().unwrap();
        assert_eq!(s.value(0), "a,b", "an escaped delimiter is data");
        assert_eq!(s.value(1), "ABx\u{7}\\", "octal, hex, \\x without digits, one octal digit, an escaped backslash");
        assert!(s.is_null(2));
    }
}
