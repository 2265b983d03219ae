//! Text patterns: "whose name starts with LYO-OUT", "emails ending in .com", "paths
//! containing docs", "devices with FRE in their name", "customers named Emma". The typed
//! text is kept as written (hyphens and dots too) and becomes an `ILIKE` on a text
//! column: the column named next to the phrase, else the label of the things named
//! before it. Recognized before linking, so the typed text is never linked or refused.

use super::*;
use crate::ask::plan::TextPosition;

/// A pattern phrase read before linking; its column is found once the links are known.
#[derive(Debug, Clone)]
pub(super) struct TextPattern {
    /// The first token of the phrase ("not", "starts", "with"): a column named right
    /// before it is the one matched.
    start: usize,
    text: String,
    position: TextPosition,
    negated: bool,
    /// "with FRE in their name": where the column's words stand.
    column_at: Option<usize>,
}

/// Words saying "does not" before a pattern verb ("names that don't start with OSA").
const NEGATIONS: &[&str] = &["not", "never"];

impl Reader<'_> {
    /// Finds the pattern phrases and marks their words read.
    pub(super) fn recognize_patterns(&mut self) {
        let mut i = 0;
        while i < self.tokens.len() {
            match self.pattern_at(i) {
                Some((pattern, end)) => {
                    self.mark(pattern.start..end);
                    self.patterns.push(pattern);
                    i = end;
                }
                None => i += 1,
            }
        }
    }

    /// "first name", "family name", "surname" at `i`: where in the full name the part
    /// stands, and the number of words.
    fn name_part(&self, i: usize) -> Option<(TextPosition, usize)> {
        if self.is(i, &["first", "given"]) && self.is(i + 1, &["name"]) {
            Some((TextPosition::Start, 2))
        } else if self.is(i, &["last", "family"]) && self.is(i + 1, &["name"]) {
            Some((TextPosition::End, 2))
        } else if self.is(i, &["surname"]) {
            Some((TextPosition::End, 1))
        } else {
            None
        }
    }

    /// A pattern phrase whose verb (or "with") stands at `i`, and the token after it.
    fn pattern_at(&self, i: usize) -> Option<(TextPattern, usize)> {
        // "whose first name is Giulia", "last name Rossi", "surname Rossi": the start or
        // the end of the name.
        let name_part = self.name_part(i);
        // "whose family name ends in -son": the name, matched as the verb says.
        if let Some((_, len)) = name_part.filter(|(_, len)| self.is(i + *len, &["starts", "start", "starting", "begins", "begin", "beginning", "ends", "end", "ending", "contains", "containing"])) {
            let verb = i + len;
            let (mut pattern, end) = self.pattern_at(verb)?;
            pattern.start = i;
            pattern.column_at = None;
            return Some((pattern, end));
        }
        if let Some((position, len)) = name_part {
            let at = if self.is(i + len, &["is", "of"]) { i + len + 1 } else { i + len };
            let first = self.word(at)?;
            if first.quoted || first.raw.starts_with(|c: char| c.is_uppercase()) {
                // The name is the label of the things named before.
                let (text, end) = self.typed_text(at)?;
                return Some((TextPattern { start: i, text, position, negated: false, column_at: None }, end));
            }
        }
        if self.is(i, &["with", "have", "has", "having"]) {
            // "with FRE in their name", "units have IND in their name": the text, then the
            // column it is in.
            let (text, end) = self.typed_text(i + 1)?;
            // "anyone with Sato as their family name": the end of the label, as a name part.
            let owner = usize::from(self.is(end + 1, &["their", "a", "the", "his", "her"]));
            if self.is(end, &["as"]) && self.tokens[i + 1].raw.starts_with(|c: char| c.is_uppercase()) {
                if let Some((position, len)) = self.name_part(end + 1 + owner) {
                    return Some((TextPattern { start: i, text, position, negated: false, column_at: None }, end + 1 + owner + len));
                }
            }
            // "with garcia somewhere in their email".
            let end = if self.is(end, &["somewhere", "anywhere"]) { end + 1 } else { end };
            // "in the last hour" is a time range, not a column.
            let column_word = self.word(end + 2).is_some_and(|t| !FILLER.contains(&t.text.as_str()) && time_unit(&t.text).is_none() && month(&t.text).is_none());
            let column_at = (self.is(end, &["in"]) && self.is(end + 1, &["their", "its", "the"]) && column_word).then_some(end + 2)?;
            let pattern = TextPattern { start: i, text, position: TextPosition::Anywhere, negated: false, column_at: Some(column_at) };
            return Some((pattern, end + 2));
        }
        let (position, verb_len, typed_only) = if self.is(i, &["starts", "start", "starting", "begins", "begin", "beginning"]) && self.is(i + 1, &["with"]) {
            (TextPosition::Start, 2, false)
        } else if self.is(i, &["starting", "beginning"]) && self.tokens.get(i + 1).is_some_and(|t| t.quoted) {
            // "a label beginning 'LYO-'".
            (TextPosition::Start, 1, false)
        } else if self.is(i, &["ends", "end", "ending"]) && self.is(i + 1, &["with", "in"]) {
            (TextPosition::End, 2, false)
        } else if self.is(i, &["contains", "contain", "containing"]) {
            (TextPosition::Anywhere, 1, false)
        } else if self.is(i, &["named", "called", "labelled", "labeled", "tagged"]) {
            // "customers named Emma": a name typed as a name, not "a table called orders".
            (TextPosition::Start, 1, true)
        } else {
            return None;
        };
        let (text, end) = self.typed_text(i + verb_len)?;
        let first = &self.tokens[i + verb_len];
        if typed_only && !(first.quoted || first.raw.starts_with(|c: char| c.is_uppercase())) {
            return None;
        }
        // "don't start with", "does not contain": the apostrophe splits "don't" in two.
        let mut start = i;
        let mut negated = false;
        if i > 0 && self.is(i - 1, NEGATIONS) {
            negated = true;
            start = i - 1;
        } else if i > 1 && self.is(i - 1, &["t"]) && self.is(i - 2, &["don", "doesn", "didn"]) {
            negated = true;
            start = i - 2;
        }
        if start > 0 && self.is(start - 1, &["does", "do", "did"]) {
            start -= 1;
        }
        Some((TextPattern { start, text, position, negated, column_at: None }, end))
    }

    /// The text typed from token `i` on, as written: a quoted text, or one word with the
    /// words glued to it by punctuation ("LYO-OUT", "example.com"); and the token after it.
    fn typed_text(&self, i: usize) -> Option<(String, usize)> {
        let first = self.word(i)?;
        if first.quoted {
            return Some((first.raw.clone(), i + 1));
        }
        if !first.raw.chars().any(char::is_alphanumeric) {
            return None;
        }
        let mut end = i + 1;
        while let Some(next) = self.word(end) {
            let gap: String = self.question.chars().skip(self.tokens[end - 1].span.1).take(next.span.0 - self.tokens[end - 1].span.1).collect();
            let glued = !gap.is_empty() && gap.chars().all(|c| matches!(c, '-' | '.' | '@' | '+' | '#' | '/'));
            if !glued || next.quoted {
                break;
            }
            end += 1;
        }
        let (from, to) = (self.tokens[i].span.0, self.tokens[end - 1].span.1);
        Some((self.question.chars().skip(from).take(to - from).collect(), end))
    }

    /// Each pattern becomes a filter on its text column; returns the links that named
    /// those columns (they ask for nothing else).
    pub(super) fn place_patterns(&mut self, links: &[Link], d: &mut Draft, context: &mut Vec<usize>) -> Result<Vec<usize>, Refusal> {
        let mut column_links = Vec::new();
        for pattern in std::mem::take(&mut self.patterns) {
            let named = links.iter().position(|l| match pattern.column_at {
                Some(at) => l.start == at,
                None => l.end == pattern.start,
            });
            let text_columns: Vec<&Candidate> = named
                .map(|l| links[l].candidates.iter().filter(|c| matches!(c.target, Target::Column(..)) && self.candidate_is(c, is_text)).collect())
                .unwrap_or_default();
            // "anything starting with /docs": the column whose stored values are paths.
            let path_column = || {
                (pattern.text.starts_with('/')).then(|| {
                    context.iter().copied().chain(0..self.catalog.relations.len()).find_map(|r| {
                        self.catalog.relations[r].columns.iter().position(|c| c.values.as_ref().is_some_and(|v| !v.is_empty() && v.iter().all(|v| v.starts_with('/')))).map(|column| ColumnRef { relation: r, column })
                    })
                })
                .flatten()
            };
            let column = if text_columns.is_empty() && pattern.text.starts_with('/') {
                path_column()
            } else if text_columns.is_empty() {
                // "customers named Emma": the label of the things named before the phrase
                // ("anyone with the last name Rossi among our clients": or after it).
                let label = |l: &Link| l.candidates.iter().find_map(|c| self.label_column(target_relation(&c.target)));
                links.iter().rev().filter(|l| l.end <= pattern.start).find_map(label).or_else(|| links.iter().filter(|l| l.start >= pattern.start).find_map(label))
            } else {
                column_links.extend(named);
                Some(as_column(&self.choose(&text_columns, context, false, "column").target))
            };
            let Some(column) = column else {
                return Err(Refusal(format!("ASK could not tell which text column \"{}\" is matched in", pattern.text)));
            };
            add_context(context, column.relation);
            d.filters.push(Filter::Like { column, text: pattern.text, position: pattern.position, negated: pattern.negated });
        }
        Ok(column_links)
    }
}

fn is_text(t: &arrow::datatypes::DataType) -> bool {
    matches!(t, arrow::datatypes::DataType::Utf8 | arrow::datatypes::DataType::LargeUtf8 | arrow::datatypes::DataType::Utf8View)
}
