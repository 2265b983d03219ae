//! Reading a question into a [`QueryPlan`].
//!
//! Fixed phrases are recognized first (time ranges and buckets, "top 5", comparisons),
//! then the remaining words are linked to the catalog, then the question's structure
//! gives each link a role: a measure ("average latency"), a group key ("per country"),
//! a filter (a stored value, a comparison), a ranking ("which browser has the slowest
//! …"), or the relation itself ("how many orders"). Any word left that is neither
//! linked nor ordinary question vocabulary makes the question unanswerable: ASK refuses
//! and names the words rather than guess.

use std::collections::{BTreeSet, VecDeque};

use chrono::{Datelike, Duration, NaiveDate};
use streamhouse_executor::{AskCatalog, Refusal};

use super::link::{is_numeric, is_temporal, is_text, Candidate, Evidence, Lexicon, Link, Target};
use super::plan::{ColumnRef, Comparison, Filter, GroupKey, Having, Join, Measure, OrderKey, QueryPlan};
use super::words::{aggregate_word, month, small_number, superlative, time_unit, tokenize, Aggregate, Token, FILLER};

/// A question read into a plan, with notes on the choices made.
#[derive(Debug)]
pub struct Reading {
    pub plan: QueryPlan,
    pub notes: Vec<String>,
}

/// What a word of the question does, once recognized.
#[derive(Debug, Clone, PartialEq)]
enum Role {
    Aggregate(Aggregate),
    /// "how many", "number of", "count of".
    CountOf,
    Distinct,
    /// "per", "by", "for each", "grouped by".
    GroupBy,
    /// "sorted by", "ordered by".
    SortBy,
    /// "which" / "what" asking for a member of a group.
    Which,
    /// A superlative that ranks: `true` descending.
    Rank(bool),
    Not,
    Direction(bool),
    /// A numeric comparison with its value(s).
    Compare(Comparison, f64, Option<f64>),
    Link(usize),
}

#[derive(Debug, Default)]
struct Time {
    recent: Option<(f64, &'static str)>,
    period: Option<(Option<NaiveDate>, Option<NaiveDate>)>,
    buckets: Vec<&'static str>,
    /// Words naming which time column ("paid", "created"): linked separately.
    limit: Option<u64>,
    /// "top", "most recent": rank descending; "bottom", "oldest": ascending.
    rank: Option<bool>,
    /// Ranking by time ("latest", "oldest") rather than by a measure.
    by_time: bool,
}

struct Reader<'a> {
    catalog: &'a AskCatalog,
    tokens: Vec<Token>,
    used: Vec<bool>,
    notes: Vec<String>,
}

pub fn understand(question: &str, catalog: &AskCatalog, lexicon: &Lexicon) -> Result<Reading, Refusal> {
    let tokens = tokenize(question);
    if tokens.is_empty() {
        return Err(Refusal("the question has no words".into()));
    }
    let mut reader = Reader { catalog, used: vec![false; tokens.len()], tokens, notes: Vec::new() };
    let mut time = Time::default();
    reader.recognize_time(&mut time);
    reader.recognize_limits(&mut time);
    let compares = reader.recognize_comparisons();
    let links: Vec<Link> = lexicon
        .link(&reader.tokens, &reader.used)
        .into_iter()
        .filter(|link| !reader.vocabulary_only(link))
        .collect();
    for link in &links {
        for j in link.start..link.end {
            reader.used[j] = true;
        }
    }
    let roles = reader.roles(&links, compares);
    let unknown: Vec<String> = (0..reader.tokens.len())
        .filter(|&i| !reader.used[i])
        .map(|i| &reader.tokens[i])
        .filter(|t| !FILLER.contains(&t.text.as_str()) && !FILLER.contains(&t.stem.as_str()) && !t.text.ends_with("ed") || t.quoted)
        .map(|t| t.raw.clone())
        .collect();
    if !unknown.is_empty() {
        return Err(Refusal(format!(
            "ASK could not link {} to any table, column or stored value",
            unknown.iter().map(|w| format!("\"{w}\"")).collect::<Vec<_>>().join(", ")
        )));
    }
    if links.is_empty() {
        return Err(Refusal("ASK could not link the question to any table or column".into()));
    }
    let plan = reader.build(&links, &roles, time)?;
    Ok(Reading { plan, notes: reader.notes })
}

impl Reader<'_> {
    fn word(&self, i: usize) -> Option<&Token> {
        self.tokens.get(i).filter(|_| !self.used.get(i).copied().unwrap_or(true))
    }

    fn is(&self, i: usize, words: &[&str]) -> bool {
        self.word(i).is_some_and(|t| !t.quoted && t.is_any(words))
    }

    fn mark(&mut self, range: std::ops::Range<usize>) {
        for i in range {
            self.used[i] = true;
        }
    }

    /// A number at `i` (digits or a small number word): (value, tokens used).
    fn number_at(&self, i: usize) -> Option<f64> {
        let t = self.word(i)?;
        t.number.or_else(|| small_number(&t.text).filter(|_| !matches!(t.text.as_str(), "a" | "an" | "one") || true))
    }

    /// A date starting at `i`: ISO, "March 3, 2025", "3 March 2025", "March 2025" (the
    /// month: returns its first day and `month = true`), or a year alone with `year_ok`.
    fn date_at(&self, i: usize, year_ok: bool) -> Option<(NaiveDate, usize, DateSpan)> {
        let t = self.word(i)?;
        if let Some((y, m, d)) = t.date {
            return NaiveDate::from_ymd_opt(y, m, d).map(|date| (date, 1, DateSpan::Day));
        }
        let year = |j: usize| self.word(j).and_then(|t| t.number).filter(|n| n.fract() == 0.0 && (1900.0..2200.0).contains(n)).map(|n| n as i32);
        let day = |j: usize| {
            self.word(j).and_then(|t| {
                let digits: String = t.text.trim_end_matches(|c: char| c.is_alphabetic()).to_string();
                digits.parse::<u32>().ok().filter(|d| (1..=31).contains(d))
            })
        };
        if let Some(m) = month(&t.text) {
            // March 3, 2025 | March 3rd 2025 | March 2025
            if let (Some(d), Some(y)) = (day(i + 1), year(i + 2)) {
                return NaiveDate::from_ymd_opt(y, m, d).map(|date| (date, 3, DateSpan::Day));
            }
            if let Some(y) = year(i + 1) {
                return NaiveDate::from_ymd_opt(y, m, 1).map(|date| (date, 2, DateSpan::Month));
            }
            return None;
        }
        if let (Some(d), Some(m), Some(y)) = (day(i), self.word(i + 1).and_then(|t| month(&t.text)), year(i + 2)) {
            return NaiveDate::from_ymd_opt(y, m, d).map(|date| (date, 3, DateSpan::Day));
        }
        if year_ok {
            if let Some(y) = year(i) {
                return NaiveDate::from_ymd_opt(y, 1, 1).map(|date| (date, 1, DateSpan::Year));
            }
        }
        None
    }

    /// "last 2 hours", "past day", "since 2025-06-01", "in March 2025", "on 2025-07-04",
    /// "between … and …", "per day", "hourly".
    fn recognize_time(&mut self, time: &mut Time) {
        let mut i = 0;
        while i < self.tokens.len() {
            if self.word(i).is_none() {
                i += 1;
                continue;
            }
            // last|past|previous [N] unit
            if self.is(i, &["last", "past", "previous", "recent", "trailing"]) {
                let (amount, unit_at) = match self.number_at(i + 1) {
                    Some(n) if self.word(i + 1).is_some_and(|t| !t.is("a")) => (n, i + 2),
                    _ => (1.0, i + 1),
                };
                if let Some(unit) = self.word(unit_at).and_then(|t| time_unit(&t.text)).filter(|u| *u != "day" || !self.is(unit_at, &["date", "dates", "daily"])) {
                    time.recent = Some((amount, unit));
                    self.mark(i..unit_at + 1);
                    i = unit_at + 1;
                    continue;
                }
            }
            // compact "24h", "7d", "30m"
            if let Some(t) = self.word(i) {
                let digits: String = t.text.chars().take_while(|c| c.is_ascii_digit()).collect();
                let suffix = &t.text[digits.len()..];
                let unit = match suffix {
                    "h" | "hr" | "hrs" => Some("hour"),
                    "d" => Some("day"),
                    "m" | "min" | "mins" => Some("minute"),
                    "w" => Some("week"),
                    _ => None,
                };
                if let (Some(unit), Ok(n), true) = (unit, digits.parse::<f64>(), i > 0 && self.tokens[i - 1].is_any(&["last", "past"])) {
                    time.recent = Some((n, unit));
                    self.mark(i - 1..i + 1);
                    i += 1;
                    continue;
                }
            }
            // between D and D / from D to D
            if self.is(i, &["between", "from"]) {
                if let Some((from, len, _)) = self.date_at(i + 1, true) {
                    let and = i + 1 + len;
                    if self.is(and, &["and", "to", "through", "until", "till"]) {
                        if let Some((to, len2, span)) = self.date_at(and + 1, true) {
                            time.period = Some((Some(from), Some(span.end(to))));
                            self.mark(i..and + 1 + len2);
                            i = and + 1 + len2;
                            continue;
                        }
                    }
                }
            }
            if self.is(i, &["since", "after", "from", "starting"]) {
                if let Some((date, len, span)) = self.date_at(i + 1, true) {
                    let from = if self.is(i, &["after"]) { span.end(date) } else { date };
                    let period = time.period.get_or_insert((None, None));
                    period.0 = Some(from);
                    self.mark(i..i + 1 + len);
                    i += 1 + len;
                    continue;
                }
            }
            if self.is(i, &["before", "until", "till", "prior"]) {
                let at = if self.is(i + 1, &["to"]) { i + 2 } else { i + 1 };
                if let Some((date, len, _)) = self.date_at(at, true) {
                    let period = time.period.get_or_insert((None, None));
                    period.1 = Some(date);
                    self.mark(i..at + len);
                    i = at + len;
                    continue;
                }
            }
            if self.is(i, &["in", "during", "on", "for", "of", "throughout"]) || self.date_at(i, false).is_some() {
                let at = if self.date_at(i, false).is_some() { i } else { i + 1 };
                if let Some((date, len, span)) = self.date_at(at, true) {
                    time.period = Some((Some(date), Some(span.end(date))));
                    self.mark(i..at + len);
                    i = at + len;
                    continue;
                }
            }
            // Buckets: per|by|each|every|a unit, daily|hourly…
            if let Some(unit) = self.word(i).and_then(|t| time_unit(&t.text)) {
                let adverb = self.is(i, &["hourly", "daily", "weekly", "monthly", "quarterly", "yearly", "annually"]);
                let marker = i > 0 && !self.used[i - 1] && self.tokens[i - 1].is_any(&["per", "by", "each", "every", "a", "an"]);
                if adverb || marker {
                    if !time.buckets.contains(&unit) {
                        time.buckets.push(unit);
                    }
                    let start = if marker { i - 1 } else { i };
                    // "for each day", "grouped by day"
                    let start = if start > 0 && !self.used[start - 1] && self.tokens[start - 1].is_any(&["for", "grouped", "broken", "split"]) { start - 1 } else { start };
                    self.mark(start..i + 1);
                    i += 1;
                    continue;
                }
            }
            i += 1;
        }
    }

    /// "top 5", "first 10", "5 most recent", "last 10 orders", "limit 20".
    fn recognize_limits(&mut self, time: &mut Time) {
        let mut i = 0;
        while i < self.tokens.len() {
            if self.is(i, &["top", "bottom", "first", "limit", "last", "latest", "newest", "oldest", "earliest"]) {
                if let Some(n) = self.number_at(i + 1).filter(|n| n.fract() == 0.0 && *n >= 1.0) {
                    let word = self.tokens[i].text.clone();
                    time.limit = Some(n as u64);
                    match word.as_str() {
                        "top" => time.rank = Some(true),
                        "bottom" => time.rank = Some(false),
                        "last" | "latest" | "newest" => {
                            time.rank = Some(true);
                            time.by_time = true;
                        }
                        "first" | "oldest" | "earliest" => {
                            time.rank = Some(false);
                            time.by_time = true;
                        }
                        _ => {}
                    }
                    self.mark(i..i + 2);
                    i += 2;
                    continue;
                }
            }
            // N most recent | N latest | N largest …
            if let Some(n) = self.word(i).and_then(|t| t.number).filter(|n| n.fract() == 0.0 && *n >= 1.0 && *n <= 10_000.0) {
                let next = i + 1;
                if self.is(next, &["most", "latest", "newest", "recent", "last", "oldest", "earliest", "first"]) {
                    time.limit = Some(n as u64);
                    if self.is(next, &["most"]) && self.is(next + 1, &["recent", "recently"]) {
                        time.rank = Some(true);
                        time.by_time = true;
                        self.mark(i..next + 2);
                        i = next + 2;
                        continue;
                    }
                    if !self.is(next, &["most"]) {
                        let descending = self.is(next, &["latest", "newest", "recent", "last"]);
                        time.rank = Some(descending);
                        time.by_time = true;
                        self.mark(i..next + 1);
                        i = next + 1;
                        continue;
                    }
                    self.mark(i..next);
                    i = next;
                    continue;
                }
                if self.word(next).is_some_and(|t| superlative(&t.text).is_some()) {
                    time.limit = Some(n as u64);
                    self.mark(i..next);
                    i = next;
                    continue;
                }
            }
            if self.is(i, &["most", "latest", "newest", "oldest", "earliest"]) && (self.is(i + 1, &["recent", "recently"]) || !self.is(i, &["most"])) {
                let descending = !self.is(i, &["oldest", "earliest"]);
                time.rank = Some(descending);
                time.by_time = true;
                let len = if self.is(i, &["most"]) { 2 } else { 1 };
                self.mark(i..i + len);
                i += len;
                continue;
            }
            i += 1;
        }
    }

    /// "more than 100", "over 5", "at least 3", "below 20", "between 10 and 20", "> 4".
    fn recognize_comparisons(&mut self) -> Vec<(usize, Comparison, f64, Option<f64>)> {
        let mut found = Vec::new();
        let mut i = 0;
        while i < self.tokens.len() {
            let pattern: Option<(Comparison, usize)> = if self.is(i, &["more", "greater", "higher", "larger", "bigger", "longer", "slower", "warmer", "hotter", "heavier", "older"]) && self.is(i + 1, &["than"]) {
                Some((Comparison::Greater, 2))
            } else if self.is(i, &["less", "fewer", "lower", "smaller", "shorter", "faster", "cooler", "colder", "cheaper", "lighter"]) && self.is(i + 1, &["than"]) {
                Some((Comparison::Less, 2))
            } else if self.is(i, &["at"]) && self.is(i + 1, &["least"]) {
                Some((Comparison::GreaterOrEqual, 2))
            } else if self.is(i, &["at"]) && self.is(i + 1, &["most"]) {
                Some((Comparison::LessOrEqual, 2))
            } else if self.is(i, &["no"]) && self.is(i + 1, &["more"]) && self.is(i + 2, &["than"]) {
                Some((Comparison::LessOrEqual, 3))
            } else if self.is(i, &["over", "above", "exceeding", "exceeds", "exceed", "exceeded", ">"]) {
                Some((Comparison::Greater, 1))
            } else if self.is(i, &["under", "below", "<"]) {
                Some((Comparison::Less, 1))
            } else if self.is(i, &[">="]) {
                Some((Comparison::GreaterOrEqual, 1))
            } else if self.is(i, &["<="]) {
                Some((Comparison::LessOrEqual, 1))
            } else if self.is(i, &["=", "equals"]) || (self.is(i, &["equal"]) && self.is(i + 1, &["to"])) {
                Some((Comparison::Equal, if self.is(i, &["equal"]) { 2 } else { 1 }))
            } else if self.is(i, &["between"]) {
                if let (Some(low), true, Some(high)) = (self.number_at(i + 1), self.is(i + 2, &["and"]), self.number_at(i + 3)) {
                    found.push((i + 1, Comparison::GreaterOrEqual, low, Some(high)));
                    self.mark(i..i + 4);
                    i += 4;
                    continue;
                }
                None
            } else {
                None
            };
            if let Some((comparison, len)) = pattern {
                if let Some(value) = self.word(i + len).and_then(|t| t.number) {
                    found.push((i + len, comparison, value, None));
                    self.mark(i..i + len + 1);
                    i += len + 1;
                    continue;
                }
            }
            i += 1;
        }
        found
    }

    /// A one-word link of a vocabulary word ("average", "count", "time") made only by a
    /// comment or concept is not a link: the word is the question's own.
    fn vocabulary_only(&self, link: &Link) -> bool {
        if link.end - link.start != 1 || link.best_evidence() >= Evidence::Value {
            return false;
        }
        let t = &self.tokens[link.start];
        aggregate_word(&t.text).is_some() || superlative(&t.text).is_some() || time_unit(&t.text).is_some() || FILLER.contains(&t.stem.as_str()) && link.best_evidence() < Evidence::Comment
    }

    /// The roles of the question's words, in order.
    fn roles(&mut self, links: &[Link], compares: Vec<(usize, Comparison, f64, Option<f64>)>) -> Vec<(usize, Role)> {
        let mut roles: Vec<(usize, Role)> = links.iter().enumerate().map(|(n, l)| (l.start, Role::Link(n))).collect();
        for (at, comparison, value, high) in compares {
            roles.push((at, Role::Compare(comparison, value, high)));
        }
        let mut i = 0;
        while i < self.tokens.len() {
            if self.used[i] || self.tokens[i].quoted {
                i += 1;
                continue;
            }
            let t = &self.tokens[i];
            let next = |words: &[&str]| self.is(i + 1, words);
            let role = if t.is("how") && next(&["many"]) {
                Some((Role::CountOf, 2))
            } else if t.is("how") && next(&["much"]) {
                Some((Role::Aggregate(Aggregate::Sum), 2))
            } else if (t.is_any(&["number", "count", "counts", "amount", "total"]) && next(&["of"])) || t.is_any(&["count", "counts"]) {
                let len = if next(&["of"]) { 2 } else { 1 };
                if t.is_any(&["amount", "total"]) { Some((Role::Aggregate(Aggregate::Sum), len)) } else { Some((Role::CountOf, len)) }
            } else if t.is_any(&["distinct", "unique", "different"]) {
                Some((Role::Distinct, 1))
            } else if t.is_any(&["sorted", "ordered", "ranked", "sort", "order", "rank"]) && next(&["by"]) {
                Some((Role::SortBy, 2))
            } else if t.is_any(&["grouped", "broken", "split", "segmented", "bucketed"]) {
                let len = if next(&["by", "down", "per"]) { if self.is(i + 2, &["by"]) { 3 } else { 2 } } else { 1 };
                Some((Role::GroupBy, len))
            } else if t.is_any(&["for", "in"]) && next(&["each", "every"]) {
                Some((Role::GroupBy, 2))
            } else if t.is_any(&["per", "by", "each", "every", "across"]) {
                Some((Role::GroupBy, 1))
            } else if t.is_any(&["which", "what"]) {
                Some((Role::Which, 1))
            } else if t.is_any(&["not", "non", "excluding", "except", "without", "isn't", "aren't"]) || (t.is("other") && next(&["than"])) {
                Some((Role::Not, if t.is("other") { 2 } else { 1 }))
            } else if t.is_any(&["ascending", "asc", "increasing"]) {
                Some((Role::Direction(false), 1))
            } else if t.is_any(&["descending", "desc", "decreasing"]) {
                Some((Role::Direction(true), 1))
            } else if let Some(aggregate) = aggregate_word(&t.text) {
                Some((Role::Aggregate(aggregate), 1))
            } else {
                superlative(&t.text).map(|d| (Role::Rank(d), 1))
            };
            if let Some((role, len)) = role {
                // "most" before an aggregate word only sharpens it ("most expensive").
                roles.push((i, role));
                self.mark(i..i + len);
                i += len;
            } else {
                i += 1;
            }
        }
        roles.sort_by_key(|(at, _)| *at);
        roles
    }

    fn column(&self, c: ColumnRef) -> &streamhouse_executor::AskColumn {
        &self.catalog.relations[c.relation].columns[c.column]
    }

    fn column_name(&self, c: ColumnRef) -> String {
        format!("{}.{}", self.catalog.relations[c.relation].name, self.column(c).name)
    }

    fn build(&mut self, links: &[Link], roles: &[(usize, Role)], time: Time) -> Result<QueryPlan, Refusal> {
        // Relations the question names outright give context for choosing columns.
        let mut named: Vec<usize> = Vec::new();
        for link in links {
            let relations: Vec<usize> = link.candidates.iter().filter_map(|c| if let Target::Relation(r) = c.target { Some(r) } else { None }).collect();
            let has_name_column = link.candidates.iter().any(|c| matches!(c.target, Target::Column(..)) && c.evidence == Evidence::Name);
            if relations.len() == 1 && (!has_name_column || self.tokens[link.start].text != self.tokens[link.start].stem) {
                named.push(relations[0]);
            }
        }
        // Relations of links that can only mean one relation.
        let mut context: Vec<usize> = named.clone();
        for link in links {
            let relations: BTreeSet<usize> = link.candidates.iter().map(|c| target_relation(&c.target)).collect();
            if relations.len() == 1 {
                let r = *relations.iter().next().expect("one");
                if !context.contains(&r) {
                    context.push(r);
                }
            }
        }

        let mut plan = QueryPlan::default();
        let mut measures: Vec<Measure> = Vec::new();
        let mut groups: Vec<ColumnRef> = Vec::new();
        let mut value_filters: Vec<(ColumnRef, String, bool)> = Vec::new();
        let mut bare_columns: Vec<ColumnRef> = Vec::new();
        let mut bare_relations: Vec<usize> = Vec::new();
        let mut numeric_filters: Vec<Filter> = Vec::new();
        let mut having: Vec<Having> = Vec::new();
        let mut order_column: Option<(ColumnRef, bool)> = None;

        let mut pending_aggregate: Option<Aggregate> = None;
        let mut pending_distinct = false;
        let mut grouping = false;
        let mut sorting = false;
        let mut negate = false;
        let mut which = false;
        let mut rank: Option<bool> = time.rank.filter(|_| !time.by_time);
        let mut ranked_group: Option<ColumnRef> = None;
        let mut pending_compare: Option<(Comparison, f64, Option<f64>)> = None;
        let mut last_numeric: Option<ColumnRef> = None;

        for (n, (at, role)) in roles.iter().enumerate() {
            match role {
                Role::Aggregate(a) => {
                    // In a ranking ("which X has the highest Y"), a superlative ranks.
                    if (which || time.rank.is_some()) && superlative(&self.tokens[*at].text).is_some() && pending_aggregate.is_none() {
                        rank = superlative(&self.tokens[*at].text);
                    } else {
                        pending_aggregate = Some(*a);
                    }
                }
                Role::CountOf => pending_aggregate = Some(Aggregate::Count),
                Role::Distinct => pending_distinct = true,
                Role::GroupBy => {
                    // "top 5 countries by revenue": after a ranked group, "by" names the measure.
                    if (ranked_group.is_some() || which) && measures.is_empty() {
                        sorting = true;
                    } else {
                        grouping = true;
                    }
                }
                Role::SortBy => sorting = true,
                Role::Which => which = true,
                Role::Rank(d) => rank = Some(*d),
                Role::Not => negate = true,
                Role::Direction(d) => {
                    if let Some((c, _)) = order_column {
                        order_column = Some((c, *d));
                    }
                    rank = Some(*d);
                }
                Role::Compare(comparison, value, high) => {
                    // Attach to the numeric column just before ("latency over 500"), or
                    // wait for the next link ("over 100 euros", "more than 5 orders").
                    let previous_link = n > 0 && matches!(roles[n - 1].1, Role::Link(_));
                    match (last_numeric, previous_link) {
                        (Some(c), true) => numeric_filters.push(number_filter(c, *comparison, *value, *high)),
                        _ => pending_compare = Some((*comparison, *value, *high)),
                    }
                }
                Role::Link(l) => {
                    let link = &links[*l];
                    let wants_column = grouping || sorting || pending_aggregate.is_some_and(|a| a != Aggregate::Count) || pending_distinct || which && groups.is_empty() && ranked_group.is_none();
                    // Values first: a stored value the user typed is a filter.
                    let value = link.candidates.iter().filter(|c| matches!(c.target, Target::Value(..))).collect::<Vec<_>>();
                    let strongest_is_value = link.best_evidence() == Evidence::Value
                        || (!value.is_empty() && !link.candidates.iter().any(|c| c.evidence == Evidence::Name && matches!(c.target, Target::Column(..) | Target::Relation(_))));
                    if !value.is_empty() && (strongest_is_value && !(wants_column && !pending_distinct && grouping)) {
                        let chosen = self.choose(&value, &context, "value");
                        if let Target::Value(r, c, v) = chosen.target {
                            value_filters.push((ColumnRef { relation: r, column: c }, v, negate));
                            negate = false;
                            if !context.contains(&r) {
                                context.push(r);
                            }
                        }
                        continue;
                    }
                    let columns: Vec<&Candidate> = link.candidates.iter().filter(|c| matches!(c.target, Target::Column(..))).collect();
                    let relations: Vec<&Candidate> = link.candidates.iter().filter(|c| matches!(c.target, Target::Relation(_))).collect();
                    let relation_word = !relations.is_empty()
                        && (columns.is_empty()
                            || (!wants_column && relations.iter().map(|c| c.evidence).max() >= columns.iter().map(|c| c.evidence).max()));
                    if let Some((comparison, value, high)) = pending_compare.take() {
                        if relation_word || pending_aggregate == Some(Aggregate::Count) {
                            // "more than 5 orders": a count over each group.
                            having.push(Having { measure: Measure { aggregate: Aggregate::Count, column: None }, comparison, value });
                            if let Some(Candidate { target: Target::Relation(r), .. }) = relations.first() {
                                bare_relations.push(*r);
                            }
                            continue;
                        }
                        let numeric: Vec<&Candidate> = columns.iter().copied().filter(|c| self.candidate_is(c, is_numeric)).collect();
                        if !numeric.is_empty() {
                            let c = as_column(&self.choose(&numeric, &context, "number").target);
                            numeric_filters.push(number_filter(c, comparison, value, high));
                            continue;
                        }
                        pending_compare = Some((comparison, value, high));
                    }
                    if relation_word {
                        let r = match self.choose(&relations, &context, "relation").target {
                            Target::Relation(r) => r,
                            _ => unreachable!("relations only"),
                        };
                        if pending_aggregate == Some(Aggregate::Count) && !pending_distinct {
                            measures.push(Measure { aggregate: Aggregate::Count, column: None });
                            pending_aggregate = None;
                        } else if grouping || (which && ranked_group.is_none() && groups.is_empty()) {
                            // "per customer": the key of that relation.
                            if let Some(key) = self.key_column(r, &context) {
                                groups.push(key);
                            }
                            if which {
                                ranked_group = groups.last().copied();
                            }
                            grouping = false;
                        } else if sorting || (rank.is_some() && ranked_group.is_some() && measures.is_empty()) {
                            // "top 5 pages by views", "which country has the most orders"
                            measures.push(Measure { aggregate: Aggregate::Count, column: None });
                            sorting = false;
                        }
                        bare_relations.push(r);
                        continue;
                    }
                    if columns.is_empty() {
                        continue;
                    }
                    let choice = self.choose(&columns, &context, "column");
                    let c = as_column(&choice.target);
                    if !context.contains(&c.relation) {
                        context.push(c.relation);
                    }
                    let numeric = is_numeric(&self.column(c).data_type);
                    if numeric {
                        last_numeric = Some(c);
                    }
                    if pending_distinct || pending_aggregate.is_some() {
                        let aggregate = if pending_distinct { Aggregate::CountDistinct } else { pending_aggregate.expect("set") };
                        let aggregate = match aggregate {
                            // Counting an id counts the distinct things it names.
                            Aggregate::Count if self.column(c).name.ends_with("_id") || self.column(c).name == "id" => Aggregate::CountDistinct,
                            Aggregate::Count => Aggregate::Count,
                            a if !numeric && a != Aggregate::CountDistinct && !matches!(a, Aggregate::Min | Aggregate::Max) => Aggregate::CountDistinct,
                            a => a,
                        };
                        measures.push(Measure { aggregate, column: Some(c) });
                        pending_aggregate = None;
                        pending_distinct = false;
                        if sorting {
                            sorting = false;
                        }
                        continue;
                    }
                    if grouping {
                        groups.push(c);
                        // "by country and device": the group continues over "and".
                        let continues = roles.get(n + 1).is_some_and(|(next_at, r)| matches!(r, Role::Link(_)) && self.tokens[at + (link.end - link.start)..*next_at].iter().all(|t| t.is_any(&["and", ","])));
                        grouping = continues;
                        continue;
                    }
                    if which && ranked_group.is_none() && groups.is_empty() && !numeric {
                        groups.push(c);
                        ranked_group = Some(c);
                        continue;
                    }
                    if time.rank.is_some() && !time.by_time && ranked_group.is_none() && groups.is_empty() && measures.is_empty() && !numeric && roles[..n].iter().all(|(_, r)| !matches!(r, Role::Link(_))) {
                        // "top 5 countries …"
                        groups.push(c);
                        ranked_group = Some(c);
                        continue;
                    }
                    if sorting || (rank.is_some() && numeric && measures.is_empty()) {
                        order_column = Some((c, rank.unwrap_or(false)));
                        sorting = false;
                        continue;
                    }
                    if is_temporal(&self.column(c).data_type) || self.column(c).data_type == arrow::datatypes::DataType::Boolean && !negate {
                        if self.column(c).data_type == arrow::datatypes::DataType::Boolean {
                            numeric_filters.push(Filter::Boolean { column: c, value: true });
                            continue;
                        }
                    }
                    if self.column(c).data_type == arrow::datatypes::DataType::Boolean && negate {
                        numeric_filters.push(Filter::Boolean { column: c, value: false });
                        negate = false;
                        continue;
                    }
                    bare_columns.push(c);
                }
            }
        }
        if pending_compare.is_some() {
            // "orders over 100": the relation's one measure column.
            let (comparison, value, high) = pending_compare.take().expect("checked");
            let base_guess = context.first().copied();
            match base_guess.and_then(|r| self.main_measure(r)) {
                Some(c) => {
                    self.notes.push(format!("read the number {value} as a limit on {}", self.column_name(c)));
                    numeric_filters.push(number_filter(c, comparison, value, high));
                }
                None => return Err(Refusal(format!("ASK could not tell which column the number {value} limits"))),
            }
        }
        if pending_aggregate == Some(Aggregate::Count) {
            measures.push(Measure { aggregate: Aggregate::Count, column: None });
        } else if let Some(a) = pending_aggregate {
            // "total revenue" already consumed; "the highest" alone: the main measure.
            let base_guess = context.first().copied();
            if let Some(c) = base_guess.and_then(|r| self.main_measure(r)) {
                measures.push(Measure { aggregate: a, column: Some(c) });
            }
        }

        // Bare numeric columns in an aggregate question are measures ("temperature per site").
        let aggregate_question = !measures.is_empty() || !groups.is_empty() || !time.buckets.is_empty() || !having.is_empty();
        for c in bare_columns.clone() {
            let numeric = is_numeric(&self.column(c).data_type);
            if aggregate_question && numeric && !self.column(c).name.ends_with("_id") && measures.is_empty() {
                let aggregate = if self.is_money(c) { Aggregate::Sum } else { Aggregate::Avg };
                self.notes.push(format!("took the {} of {}", if aggregate == Aggregate::Sum { "total" } else { "average" }, self.column_name(c)));
                measures.push(Measure { aggregate, column: Some(c) });
                bare_columns.retain(|b| *b != c);
            } else if !having.is_empty() && groups.is_empty() && !numeric {
                // "countries with more than 50 page views"
                groups.push(c);
                bare_columns.retain(|b| *b != c);
            }
        }
        if let Some(g) = ranked_group {
            if measures.is_empty() {
                if let Some((c, _)) = order_column.take() {
                    let aggregate = if self.is_money(c) { Aggregate::Sum } else { Aggregate::Avg };
                    self.notes.push(format!("ranked by the {} of {}", if aggregate == Aggregate::Sum { "total" } else { "average" }, self.column_name(c)));
                    measures.push(Measure { aggregate, column: Some(c) });
                } else {
                    measures.push(Measure { aggregate: Aggregate::Count, column: None });
                }
            }
            let _ = g;
            plan.order.push((OrderKey::Measure(0), rank.unwrap_or(true)));
            plan.limit = Some(time.limit.unwrap_or(1));
        }

        // The base relation: the measure's, else the one named, else the group's.
        let base = measures
            .iter()
            .find_map(|m| m.column.map(|c| c.relation))
            .or_else(|| (!measures.is_empty()).then(|| bare_relations.first().copied().or(named.first().copied())).flatten())
            .or_else(|| named.first().copied())
            .or_else(|| bare_relations.first().copied())
            .or_else(|| groups.first().map(|c| c.relation))
            .or_else(|| bare_columns.first().map(|c| c.relation))
            .or_else(|| value_filters.first().map(|(c, _, _)| c.relation))
            .or_else(|| context.first().copied())
            .ok_or_else(|| Refusal("ASK could not tell which table the question is about".into()))?;
        plan.base = base;

        // Values of one column together are alternatives: IN (…).
        let mut values: Vec<(ColumnRef, Vec<String>, bool)> = Vec::new();
        for (c, v, negated) in value_filters {
            let c = self.same_column_in(c, base, &context);
            match values.iter_mut().find(|(col, _, n)| *col == c && *n == negated) {
                Some((_, vs, _)) => {
                    if !vs.contains(&v) {
                        vs.push(v)
                    }
                }
                None => values.push((c, vec![v], negated)),
            }
        }
        for (column, values, negated) in values {
            plan.filters.push(Filter::Values { column, values, negated });
        }
        plan.filters.extend(numeric_filters);

        // Time: a range, and buckets as group keys.
        if time.recent.is_some() || time.period.is_some() || !time.buckets.is_empty() || time.by_time {
            let ts = self.time_column(base, &bare_columns, &context)?;
            bare_columns.retain(|c| *c != ts);
            if let Some((amount, unit)) = time.recent {
                plan.filters.push(Filter::Recent { column: ts, amount, unit });
            }
            if let Some((from, to)) = time.period {
                let text = |d: NaiveDate| d.format("%Y-%m-%d").to_string();
                plan.filters.push(Filter::Period { column: ts, from: from.map(text), to: to.map(text) });
            }
            for unit in &time.buckets {
                plan.group_by.push(GroupKey::Bucket(ts, unit));
            }
            if time.by_time {
                order_column = Some((ts, time.rank.unwrap_or(true)));
            }
        }
        let buckets = plan.group_by.len();
        plan.group_by.extend(groups.iter().map(|c| GroupKey::Column(*c)));
        plan.measures = measures;
        plan.having = having;
        if !plan.is_aggregate() {
            // A row query: the columns asked for, newest or ranked as asked.
            let wanted: Vec<ColumnRef> = bare_columns.iter().copied().filter(|c| Some(*c) != order_column.map(|(o, _)| o)).collect();
            plan.columns = wanted;
            if plan.columns.iter().any(|c| c.relation != base) && plan.columns.iter().all(|c| c.relation != base) {
                plan.base = plan.columns[0].relation;
            }
            if order_column.is_none() {
                if let (Some(d), Some(c)) = (rank, self.main_measure(plan.base)) {
                    order_column = Some((c, d));
                }
            }
            if let Some((c, d)) = order_column {
                plan.order.push((OrderKey::Column(c), d));
            }
            plan.limit = time.limit;
        } else if plan.order.is_empty() {
            if let Some((c, d)) = order_column {
                if let Some(i) = plan.measures.iter().position(|m| m.column == Some(c)) {
                    plan.order.push((OrderKey::Measure(i), d));
                }
            }
            if time.rank.is_some() && !plan.measures.is_empty() && plan.order.is_empty() {
                plan.order.push((OrderKey::Measure(0), time.rank.unwrap_or(true)));
            }
            if plan.order.is_empty() {
                // Deterministic output: by the groups, buckets first.
                for i in 0..plan.group_by.len() {
                    plan.order.push((OrderKey::Group(i), false));
                }
                let _ = buckets;
            }
            plan.limit = plan.limit.or(time.limit);
        }
        self.join(&mut plan)?;
        Ok(plan)
    }

    fn candidate_is(&self, c: &Candidate, test: fn(&arrow::datatypes::DataType) -> bool) -> bool {
        match c.target {
            Target::Column(r, col) => test(&self.catalog.relations[r].columns[col].data_type),
            _ => false,
        }
    }

    /// Picks among candidates: in a relation the question is about, then by evidence;
    /// notes a choice between equals.
    fn choose(&mut self, candidates: &[&Candidate], context: &[usize], what: &str) -> Candidate {
        let rank = |c: &Candidate| {
            let r = target_relation(&c.target);
            let in_context = context.iter().position(|x| *x == r).map(|p| usize::MAX - p).unwrap_or(0);
            (c.evidence, in_context)
        };
        let mut sorted: Vec<&Candidate> = candidates.to_vec();
        sorted.sort_by_key(|c| std::cmp::Reverse(rank(c)));
        let best = sorted[0].clone();
        if sorted.len() > 1 && rank(sorted[1]) == rank(&best) {
            let describe = |c: &Candidate| match &c.target {
                Target::Relation(r) => self.catalog.relations[*r].name.clone(),
                Target::Column(r, col) => format!("{}.{}", self.catalog.relations[*r].name, self.catalog.relations[*r].columns[*col].name),
                Target::Value(r, col, v) => format!("{}.{} = '{v}'", self.catalog.relations[*r].name, self.catalog.relations[*r].columns[*col].name),
            };
            self.notes.push(format!("the {what} could be {} or {}; chose {}", describe(sorted[0]), describe(sorted[1]), describe(&best)));
        }
        best
    }

    /// The column of `base` (or of a context relation) that holds the key of relation `r`.
    fn key_column(&self, r: usize, context: &[usize]) -> Option<ColumnRef> {
        let relation = &self.catalog.relations[r];
        let singular = super::words::stem(&relation.name.to_lowercase());
        let key_names = [format!("{singular}_id"), format!("{}_id", relation.name.to_lowercase())];
        for &other in context.iter().filter(|&&o| o != r) {
            if let Some(c) = self.catalog.relations[other].columns.iter().position(|c| key_names.contains(&c.name.to_lowercase())) {
                return Some(ColumnRef { relation: other, column: c });
            }
        }
        relation
            .columns
            .iter()
            .position(|c| key_names.contains(&c.name.to_lowercase()) || c.name == "id")
            .map(|c| ColumnRef { relation: r, column: c })
    }

    /// The same-named column in `base`, when the value linked to another relation's copy.
    fn same_column_in(&self, c: ColumnRef, base: usize, _context: &[usize]) -> ColumnRef {
        if c.relation == base {
            return c;
        }
        let name = &self.column(c).name;
        match self.catalog.relations[base].columns.iter().position(|x| &x.name == name) {
            Some(column) => ColumnRef { relation: base, column },
            None => c,
        }
    }

    fn is_money(&self, c: ColumnRef) -> bool {
        let column = self.column(c);
        let words = ["amount", "price", "revenue", "total", "cost", "euro", "euros", "dollar", "dollars", "usd", "eur", "spend"];
        let mut text = column.name.to_lowercase();
        if let Some(comment) = &column.comment {
            text.push(' ');
            text.push_str(&comment.to_lowercase());
        }
        tokenize(&text).iter().any(|t| words.contains(&t.text.as_str())) || column.name.split('_').any(|w| words.contains(&w))
    }

    /// A relation's one numeric column that is not a key (its measure), if there is one;
    /// among several, the money column.
    fn main_measure(&self, r: usize) -> Option<ColumnRef> {
        let relation = &self.catalog.relations[r];
        let measures: Vec<ColumnRef> = relation
            .columns
            .iter()
            .enumerate()
            .filter(|(_, c)| is_numeric(&c.data_type) && !c.name.ends_with("_id") && c.name != "id")
            .map(|(i, _)| ColumnRef { relation: r, column: i })
            .collect();
        match measures.as_slice() {
            [one] => Some(*one),
            many => many.iter().copied().find(|c| self.is_money(*c)),
        }
    }

    /// The time column a range or bucket applies to: the one mentioned, else the base
    /// relation's only one, else the most likely by name (noted).
    fn time_column(&mut self, base: usize, mentioned: &[ColumnRef], context: &[usize]) -> Result<ColumnRef, Refusal> {
        if let Some(c) = mentioned.iter().find(|c| is_temporal(&self.column(**c).data_type)) {
            return Ok(*c);
        }
        for r in std::iter::once(base).chain(context.iter().copied()) {
            let temporal: Vec<usize> = self.catalog.relations[r].columns.iter().enumerate().filter(|(_, c)| is_temporal(&c.data_type)).map(|(i, _)| i).collect();
            match temporal.as_slice() {
                [] => continue,
                [one] => return Ok(ColumnRef { relation: r, column: *one }),
                many => {
                    let preferred = ["ts", "timestamp", "time", "event_time", "created_at", "occurred_at"];
                    let chosen = many.iter().copied().find(|&i| preferred.contains(&self.catalog.relations[r].columns[i].name.as_str())).unwrap_or(many[0]);
                    let c = ColumnRef { relation: r, column: chosen };
                    self.notes.push(format!("used {} as the time of each row", self.column_name(c)));
                    return Ok(c);
                }
            }
        }
        Err(Refusal(format!("{} has no time column to apply the time range to", self.catalog.relations[base].name)))
    }

    /// Joins every relation the plan uses to the base, along `<thing>_id` keys.
    fn join(&mut self, plan: &mut QueryPlan) -> Result<(), Refusal> {
        let mut used: Vec<usize> = Vec::new();
        let mut note = |c: &ColumnRef| {
            if c.relation != plan.base && !used.contains(&c.relation) {
                used.push(c.relation);
            }
        };
        plan.measures.iter().filter_map(|m| m.column.as_ref()).for_each(&mut note);
        plan.group_by.iter().for_each(|g| match g {
            GroupKey::Column(c) | GroupKey::Bucket(c, _) => note(c),
        });
        plan.columns.iter().for_each(&mut note);
        plan.order.iter().for_each(|(k, _)| {
            if let OrderKey::Column(c) = k {
                note(c)
            }
        });
        for f in &plan.filters {
            match f {
                Filter::Values { column, .. }
                | Filter::Number { column, .. }
                | Filter::Range { column, .. }
                | Filter::Boolean { column, .. }
                | Filter::Recent { column, .. }
                | Filter::Period { column, .. } => note(column),
            }
        }
        let mut joined = vec![plan.base];
        for target in used {
            if joined.contains(&target) {
                continue;
            }
            let path = self.join_path(&joined, target).ok_or_else(|| {
                Refusal(format!(
                    "ASK could not relate {} to {}: no shared key column",
                    self.catalog.relations[plan.base].name, self.catalog.relations[target].name
                ))
            })?;
            for join in path {
                joined.push(join.relation);
                plan.joins.push(join);
            }
        }
        Ok(())
    }

    /// Shortest chain of key joins from any joined relation to `target`.
    fn join_path(&self, joined: &[usize], target: usize) -> Option<Vec<Join>> {
        let mut queue: VecDeque<(usize, Vec<Join>)> = joined.iter().map(|r| (*r, Vec::new())).collect();
        let mut seen: Vec<usize> = joined.to_vec();
        while let Some((r, path)) = queue.pop_front() {
            for other in 0..self.catalog.relations.len() {
                if seen.contains(&other) {
                    continue;
                }
                if let Some((left, right)) = self.key_pair(r, other) {
                    let mut next = path.clone();
                    next.push(Join { relation: other, left, right });
                    if other == target {
                        return Some(next);
                    }
                    seen.push(other);
                    queue.push_back((other, next));
                }
            }
        }
        None
    }

    /// Columns joining relations `a` and `b`: the same `…_id` column in both, or
    /// `a.<b>_id = b.id` (either way round).
    fn key_pair(&self, a: usize, b: usize) -> Option<(ColumnRef, ColumnRef)> {
        let (ra, rb) = (&self.catalog.relations[a], &self.catalog.relations[b]);
        let singular = |name: &str| super::words::stem(&name.to_lowercase());
        for (i, ca) in ra.columns.iter().enumerate() {
            if !ca.name.ends_with("_id") {
                continue;
            }
            if let Some(j) = rb.columns.iter().position(|cb| cb.name == ca.name) {
                // Both sides hold the key; it must be the key of one of them.
                let owner = ca.name.trim_end_matches("_id");
                if singular(&ra.name) == owner || singular(&rb.name) == owner || ra.name.to_lowercase() == owner || rb.name.to_lowercase() == owner {
                    return Some((ColumnRef { relation: a, column: i }, ColumnRef { relation: b, column: j }));
                }
            }
            if ca.name.trim_end_matches("_id") == singular(&rb.name) {
                if let Some(j) = rb.columns.iter().position(|cb| cb.name == "id") {
                    return Some((ColumnRef { relation: a, column: i }, ColumnRef { relation: b, column: j }));
                }
            }
        }
        for (j, cb) in rb.columns.iter().enumerate() {
            if cb.name.ends_with("_id") && cb.name.trim_end_matches("_id") == singular(&ra.name) {
                if let Some(i) = ra.columns.iter().position(|ca| ca.name == "id") {
                    return Some((ColumnRef { relation: a, column: i }, ColumnRef { relation: b, column: j }));
                }
            }
        }
        None
    }
}

/// How far a date phrase reaches: a day, a month or a year.
#[derive(Debug, Clone, Copy)]
enum DateSpan {
    Day,
    Month,
    Year,
}

impl DateSpan {
    /// The first day after the span starting at `date`.
    fn end(self, date: NaiveDate) -> NaiveDate {
        match self {
            DateSpan::Day => date + Duration::days(1),
            DateSpan::Month => {
                let (y, m) = if date.month() == 12 { (date.year() + 1, 1) } else { (date.year(), date.month() + 1) };
                NaiveDate::from_ymd_opt(y, m, 1).unwrap_or(date)
            }
            DateSpan::Year => NaiveDate::from_ymd_opt(date.year() + 1, 1, 1).unwrap_or(date),
        }
    }
}

fn target_relation(t: &Target) -> usize {
    match t {
        Target::Relation(r) | Target::Column(r, _) | Target::Value(r, _, _) => *r,
    }
}

fn as_column(t: &Target) -> ColumnRef {
    match t {
        Target::Column(r, c) | Target::Value(r, c, _) => ColumnRef { relation: *r, column: *c },
        Target::Relation(_) => unreachable!("a column candidate"),
    }
}

fn number_filter(column: ColumnRef, comparison: Comparison, value: f64, high: Option<f64>) -> Filter {
    match high {
        Some(high) => Filter::Range { column, low: value, high },
        None => Filter::Number { column, comparison, value },
    }
}

#[allow(dead_code)]
fn is_text_column(c: &streamhouse_executor::AskColumn) -> bool {
    is_text(&c.data_type)
}
