//! Reading a question into a [`QueryPlan`].
//!
//! Fixed phrases are recognized first (time ranges and buckets, "top 5", comparisons),
//! then the remaining words are linked to the catalog, then the question's structure
//! gives each link a role: a measure ("average latency"), a group key ("per country"),
//! a filter (a stored value, a comparison), a ranking ("which browser has the slowest
//! …"), or the relation itself ("how many orders"). Any word left that is neither
//! linked nor ordinary question vocabulary makes the question unanswerable: ASK refuses
//! and names the words rather than guess.
//!
//! Here: tokens, roles and the left-to-right walk; `phrases` (fixed phrases), `prune`
//! (links dropped or narrowed before roles are read), `place`
//! (one link's role), `finish` (from the walk's draft to a plan), `schema` (what the
//! catalog's shape says: keys, joins, measure and time columns, choices).

use std::collections::BTreeSet;

use chrono::NaiveDate;
use streamhouse_executor::{AskCatalog, Refusal};

use super::link::{is_money_word, is_numeric, is_temporal, is_value_phrase, Candidate, Evidence, Lexicon, Link, Target};
use super::meaning::MeaningLinker;
use super::plan::{ColumnRef, Comparison, Filter, GroupKey, Having, Measure, OrderKey, QueryPlan};
use super::words::{aggregate_word, month, superlative, time_unit, tokenize, Aggregate, Token, FILLER, UNITS};

mod compare;
mod finish;
mod patterns;
mod phrases;
mod place;
mod preamble;
mod prune;
mod rewrite;
mod roles;
mod schema;

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
    /// "between 6 and 12 hours ago": (nearer, farther, unit).
    ago: Option<(f64, f64, &'static str)>,
    /// "more than 30 days ago": before that long ago.
    before_ago: Option<(f64, &'static str)>,
    /// "rank the regions by …": every group, ranked.
    rank_all: bool,
    period: Option<(Option<NaiveDate>, Option<NaiveDate>)>,
    buckets: Vec<&'static str>,
    limit: Option<u64>,
    /// "top", "most recent": rank descending; "bottom", "oldest": ascending.
    rank: Option<bool>,
    /// Ranking by time ("latest", "oldest") rather than by a measure.
    by_time: bool,
    /// "the 5 coldest readings": rows ranked by what the adjective measures.
    rank_word: Option<String>,
    /// Where a ranking word stood (a singular noun after it asks for one row).
    rank_at: Option<usize>,
    /// "in which month …": the time bucket is the group asked for, ranked by the measure.
    ranked_bucket: bool,
    /// "when did …", "date of the …": the answer is the time column.
    asks_time: bool,
    /// "…: email and when they joined": the time column is listed beside others.
    lists_time: bool,
    /// Where the time range's words start.
    range_at: Option<usize>,
}

impl Time {
    /// A range of time limits the rows.
    fn has_range(&self) -> bool {
        self.recent.is_some() || self.ago.is_some() || self.before_ago.is_some() || self.period.is_some()
    }

    /// The asked range as UTC microseconds `[from, to)`, when there is one.
    fn span(&self, now: chrono::DateTime<chrono::Utc>) -> Option<(i64, i64)> {
        let now = now.timestamp_micros();
        // `as` saturates; the subtractions below saturate too (absurd amounts stay harmless).
        let micros = |amount: f64, unit: &str| (amount * unit_seconds(unit) * 1e6) as i64;
        let midnight = |d: NaiveDate| d.and_hms_opt(0, 0, 0).map(|t| t.and_utc().timestamp_micros());
        if let Some((amount, unit)) = self.recent {
            return Some((now.saturating_sub(micros(amount, unit)), i64::MAX));
        }
        if let Some((near, far, unit)) = self.ago {
            return Some((now.saturating_sub(micros(far, unit)), now.saturating_sub(micros(near, unit))));
        }
        if let Some((amount, unit)) = self.before_ago {
            return Some((i64::MIN, now.saturating_sub(micros(amount, unit))));
        }
        let (from, to) = self.period?;
        Some((from.and_then(midnight).unwrap_or(i64::MIN), to.and_then(midnight).unwrap_or(i64::MAX)))
    }
}

/// Seconds in a calendar unit of [`time_unit`] (months and years at their average length).
pub(super) fn unit_seconds(unit: &str) -> f64 {
    match unit {
        "second" => 1.0,
        "minute" => 60.0,
        "hour" => 3600.0,
        "day" => 86_400.0,
        "week" => 7.0 * 86_400.0,
        "month" => 30.44 * 86_400.0,
        "quarter" => 91.31 * 86_400.0,
        _ => 365.25 * 86_400.0,
    }
}

struct Reader<'a> {
    catalog: &'a AskCatalog,
    tokens: Vec<Token>,
    used: Vec<bool>,
    notes: Vec<String>,
    /// Each link's start and the relations its candidates point into, with their best
    /// evidence: how much the rest of the question supports a relation.
    support: Vec<(usize, Vec<(usize, Evidence)>)>,
    /// The start of the link being placed (its own candidates are no support).
    placing: Option<usize>,
    /// The time range the question asks about, in UTC microseconds `[from, to)`.
    asked_span: Option<(i64, i64)>,
    /// The question as typed (a pattern's text is read back from it).
    question: &'a str,
    /// Text patterns ("starts with LYO") waiting for their column.
    patterns: Vec<patterns::TextPattern>,
    /// "The most recent payment: when, how much, …": the amount of the ranked row is asked.
    amount_listed: bool,
    /// The end of a leading label ("Brazil traffic: …"), 0 without one.
    label_end: usize,
}

pub fn understand(question: &str, catalog: &AskCatalog, lexicon: &Lexicon, meaning: Option<&MeaningLinker>) -> Result<Reading, Refusal> {
    let tokens = tokenize(question);
    if tokens.is_empty() {
        return Err(Refusal("the question has no words".into()));
    }
    let mut reader = Reader { catalog, used: vec![false; tokens.len()], tokens, notes: Vec::new(), support: Vec::new(), placing: None, asked_span: None, question, patterns: Vec::new(), amount_listed: false, label_end: 0 };
    // The preamble's words are not read; its stored values are linked below.
    let linked: Vec<bool> = {
        let mut linked = vec![false; reader.tokens.len()];
        for link in lexicon.link(&reader.tokens, &reader.used) {
            linked[link.start..link.end].iter_mut().for_each(|l| *l = true);
        }
        linked
    };
    let preamble = reader.preamble(&linked);
    // Its words are not read — but for its stored values (linked below) and its phrases of
    // time and number ("the enterprise accounts that joined in the last 90 days").
    let unread: Vec<usize> = preamble.as_ref().map(|p| reader.preamble_unread(p)).unwrap_or_default();
    let label = if preamble.is_none() { reader.label(&linked) } else { None };
    reader.label_end = label.as_ref().map_or(0, |l| l.end);
    for &i in &unread {
        reader.used[i] = true;
    }
    reader.recognize_patterns();
    reader.mark_restated_spread();
    let mut time = Time::default();
    let before_time = reader.used.clone();
    reader.recognize_time(&mut time);
    time.range_at = (0..reader.tokens.len()).find(|&i| reader.used[i] && !before_time[i]).filter(|_| time.has_range());
    reader.recognize_limits(&mut time);
    let compares = reader.recognize_comparisons();
    let has_comparison = !compares.is_empty();
    let linkable: Vec<bool> = reader.used.iter().enumerate().map(|(i, used)| *used && !unread.contains(&i)).collect();
    let links: Vec<Link> = lexicon
        .link(&reader.tokens, &linkable)
        .into_iter()
        .filter(|link| !reader.vocabulary_only(link))
        .collect();
    let mut links = links;
    if let Some(preamble) = &preamble {
        reader.keep_preamble_values(preamble, &mut links);
    }
    // A label that names an occasion ("Cold-chain check:", "Support ticket from user 79:")
    // has no loose associations read; its names and values are.
    if let Some(label) = label.as_ref().filter(|label| (label.start..label.end).any(|i| !linked[i] && !reader.tokens[i].is_filler() && reader.tokens[i].number.is_none())) {
        links.retain(|l| !label.contains(&l.start) || l.best_evidence() > Evidence::Concept);
    }
    reader.drop_stray_verbs(&mut links);
    reader.drop_whole_row_words(&mut links);
    reader.drop_unreachable_readings(&mut links);
    reader.drop_time_spent(&mut links);
    reader.drop_per_row(&mut links);
    reader.read_listed_whiches_as_columns(&mut links);
    reader.read_count_nouns_as_rows(&mut links);
    if let Some(meaning) = meaning {
        reader.link_by_meaning(meaning, &mut links);
    }
    for link in &links {
        for j in link.start..link.end {
            reader.used[j] = true;
        }
    }
    let roles = reader.roles(&links, compares);
    tracing::debug!(question, ?links, ?roles, "ASK read");
    let plan = if links.is_empty() { None } else { Some(reader.build(&links, &roles, time)) };
    reader.names_of_dates();
    let claimed_number = reader.tokens.iter().zip(&reader.used).any(|(t, used)| *used && t.number.is_some());
    // "crashed with a server error": a code named by its words says how.
    let has_code_value = links.iter().any(|l| l.candidates.iter().any(|c| matches!(&c.target, Target::Value(_, _, v) if v.parse::<i64>().is_ok())));
    let linked_before = |i: usize| links.iter().any(|l| l.end == i);
    let unknown: Vec<String> = (0..reader.tokens.len())
        .filter(|&i| !reader.used[i])
        .filter(|&i| {
            let t = &reader.tokens[i];
            // "under 20%", "in °C": a unit after a number or naming the unit of the answer.
            // "battery percentage", "(EUR)": a unit after a linked word, a currency anywhere.
            // ("name and °C": a degree sign glued to the unit.)
            let degrees = question.chars().nth(t.span.0.saturating_sub(1)) == Some('°') && t.is_any(&["c", "f"]);
            let currency = degrees || t.is_any(&["eur", "euro", "euros", "usd", "dollar", "dollars", "€", "$"]);
            let unit = (i > 0 && (reader.tokens[i - 1].number.is_some() || reader.tokens[i - 1].is_any(&["in", "°"]) || linked_before(i) || aggregate_word(&reader.tokens[i - 1].text).is_some()) || currency)
                && UNITS.contains(&t.text.as_str());
            // "low-battery readings (under 20%)": the comparison says how low.
            let said_by_comparison = has_comparison && t.is_any(&["low", "high", "lower", "higher"]);
            // "requests that failed with a 404": the status code says how.
            // "signup dates": the time column just named.
            let said_by_time = i > 0 && reader.used[i - 1] && t.is_any(&["date", "dates", "time", "timestamp", "timestamps"]);
            // "paths under /blog/", "/docs and everything below it".
            let under_path = t.is_any(&["under", "below", "beneath"]) && reader.tokens.get(i + 1).is_some_and(|n| n.text.starts_with('/') || n.is_any(&["it", "them", "that"]));
            // "in which months …? month and total": the calendar unit already read.
            let unit_again = time_unit(&t.text).is_some_and(|unit| (0..i).any(|j| reader.used[j] && time_unit(&reader.tokens[j].text) == Some(unit)));
            let said_by_code = (has_comparison || claimed_number || has_code_value) && t.is_any(&["failed", "failing", "errored", "erroring", "crashed", "crashing"]);
            let names_occasion = label.as_ref().is_some_and(|label| label.contains(&i)) && t.number.is_none() && t.date.is_none();
            t.quoted || !(names_occasion || t.is_filler() || unit || said_by_comparison || said_by_code || said_by_time || unit_again || under_path)
        })
        .map(|i| reader.tokens[i].raw.clone())
        .collect();
    if !unknown.is_empty() {
        return Err(Refusal(format!(
            "ASK could not link {} to any table, column or stored value",
            unknown.iter().map(|w| format!("\"{w}\"")).collect::<Vec<_>>().join(", ")
        )));
    }
    let plan = plan.ok_or_else(|| Refusal("ASK could not link the question to any table or column".into()))??;
    Ok(Reading { plan, notes: reader.notes })
}

impl Reader<'_> {
    fn word(&self, i: usize) -> Option<&Token> {
        self.tokens.get(i).filter(|_| !self.used.get(i).copied().unwrap_or(true))
    }

    fn is(&self, i: usize, words: &[&str]) -> bool {
        self.word(i).is_some_and(|t| !t.quoted && t.is_any(words))
    }

    /// Whether a pause stands after token `from`, up to and including token `to`.
    fn pause_between(&self, from: usize, to: usize) -> bool {
        (from + 1..=to).any(|j| self.tokens[j].pause_before)
    }

    fn mark(&mut self, range: std::ops::Range<usize>) {
        for i in range {
            self.used[i] = true;
        }
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

    fn column(&self, c: ColumnRef) -> &streamhouse_executor::AskColumn {
        &self.catalog.relations[c.relation].columns[c.column]
    }

    fn column_name(&self, c: ColumnRef) -> String {
        format!("{}.{}", self.catalog.relations[c.relation].name, self.column(c).name)
    }

    fn build(&mut self, links: &[Link], roles: &[(usize, Role)], time: Time) -> Result<QueryPlan, Refusal> {
        let (named, mut context) = self.context(links);
        self.asked_span = time.span(chrono::Utc::now());
        self.support = links
            .iter()
            .map(|l| {
                let mut best: Vec<(usize, Evidence)> = Vec::new();
                for c in &l.candidates {
                    let r = target_relation(&c.target);
                    match best.iter_mut().find(|(x, _)| *x == r) {
                        Some((_, e)) => *e = (*e).max(c.evidence),
                        None => best.push((r, c.evidence)),
                    }
                }
                (l.start, best)
            })
            .collect();
        let wants_time = time.has_range() || !time.buckets.is_empty() || time.by_time;
        let time_listed = time.lists_time;
        let mut d = Draft { ranked_bucket: time.ranked_bucket, qualified: self.qualified_relation(links), ..Draft::default() };
        // "whose name starts with OSA": the name is matched, not asked for.
        let pattern_columns = self.place_patterns(links, &mut d, &mut context)?;
        let roles: Vec<(usize, Role)> = roles.iter().filter(|(_, r)| !matches!(r, Role::Link(l) if pattern_columns.contains(l))).cloned().collect();
        let roles = &roles[..];
        self.number_values(links, &context, &mut d);
        let mut s = Walk { rank: time.rank.filter(|_| !time.by_time), ..Walk::default() };
        // "top 5 countries" ranks groups; "the 5 largest orders" (a ranking word) ranks
        // rows, "the 2 driest sites" groups again (a text column, not a relation).
        // ("European orders …, biggest first": the rows named first, all of them in order;
        // people named first are ranked as groups.)
        let names_rows = links
            .iter()
            .find(|l| !l.candidates.iter().any(|c| matches!(c.target, Target::Value(..) | Target::Prefix(..))))
            .is_some_and(|l| l.candidates.iter().any(|c| matches!(c.target, Target::Relation(r) if !self.holds_people(r)) && c.evidence == Evidence::Name));
        let orders_all = time.rank_all && time.limit.is_none() && names_rows;
        let top_n = time.rank.is_some() && !time.by_time && !orders_all && (time.rank_word.is_none() || self.names_a_group(links.first()));
        let leading = (time.rank.is_none()).then(|| self.leading_superlative(links, roles)).flatten();
        let reordered: Vec<(usize, Role)>;
        let roles = match leading {
            // "quickest page by mean load time": "which page is the quickest …".
            Some((k, adjective)) => {
                let mut r = roles.to_vec();
                let superlative = r.remove(k);
                // "most humid sensor": "which sensor is the most humid".
                let measured = adjective.then(|| r.remove(k));
                r.insert(k, (superlative.0, Role::Which));
                r.insert(k + 2, superlative);
                if let Some(measured) = measured {
                    r.insert(k + 3, measured);
                }
                reordered = r;
                &reordered[..]
            }
            None => roles,
        };

        for (n, (at, role)) in roles.iter().enumerate() {
            let previous = n.checked_sub(1).map(|p| &roles[p]);
            let last_measure = s.last_measure.take();
            match role {
                // "… wait longer than 500 ms on average": already read with the comparison.
                Role::Aggregate(_) if s.consumed_at == Some(*at) => {}
                // "which indoor sensor ran hottest on average": the ranking word already
                // ranks by the average of what it measures.
                Role::Aggregate(Aggregate::Avg)
                    if *at > 0
                        && self.tokens[at - 1].is("on")
                        && s.pending.is_empty()
                        && s.rank_word.as_deref().is_some_and(|w| self.reachable(&context).into_iter().any(|r| self.adjective_column(r, w).is_some())) => {}
                // "humidity on average for every kind of device": the column just named, averaged.
                Role::Aggregate(a)
                    if *at > 0
                        && self.tokens[at - 1].is("on")
                        && s.pending.is_empty()
                        && s.rank.is_none()
                        && matches!(previous, Some((_, Role::Link(_))))
                        && s.last_numeric.is_some_and(|c| d.bare_columns.contains(&c)) =>
                {
                    if let Some(c) = s.last_numeric {
                        d.bare_columns.retain(|b| *b != c);
                        d.measures.push(Measure { aggregate: *a, column: Some(c) });
                        s.last_measure = Some(d.measures.len() - 1);
                    }
                }
                // "most humid sensor in Lyon on average": the ranking column, averaged.
                Role::Aggregate(Aggregate::Avg) if *at > 0 && self.tokens[at - 1].is("on") && s.pending.is_empty() && s.rank.is_some() && d.measures.is_empty() && d.order_column.is_some() => {
                    if let Some((c, _)) = d.order_column.take() {
                        d.measures.push(Measure { aggregate: Aggregate::Avg, column: Some(c) });
                    }
                }
                // "temperature spread": its maximum minus its minimum.
                Role::Aggregate(Aggregate::Spread) if matches!(previous, Some((_, Role::Link(l))) if links[*l].end == *at) && s.last_numeric.is_some() => {
                    if let Some(c) = s.last_numeric {
                        d.bare_columns.retain(|b| *b != c);
                        d.measures.push(Measure { aggregate: Aggregate::Spread, column: Some(c) });
                        s.last_measure = Some(d.measures.len() - 1);
                    }
                    s.pending_word = None;
                }
                // "temperature range": its minimum and maximum.
                Role::Aggregate(_) if self.tokens[*at].is("range") => {
                    // "humidity range (…) at the Austin site": of the numeric column just
                    // named, not of what follows.
                    let just_numeric = s.last_numeric.filter(|_| matches!(previous, Some((_, Role::Link(l))) if links[*l].end == *at));
                    match just_numeric {
                        Some(c) => {
                            d.bare_columns.retain(|b| *b != c);
                            d.measures.push(Measure { aggregate: Aggregate::Min, column: Some(c) });
                            d.measures.push(Measure { aggregate: Aggregate::Max, column: Some(c) });
                        }
                        None => s.pending = vec![Aggregate::Min, Aggregate::Max],
                    }
                    s.pending_word = None;
                }
                // "reading count per device": the count of the relation just named.
                Role::Aggregate(Aggregate::Count)
                    if matches!(previous, Some((_, Role::Link(l))) if links[*l].end == *at && links[*l].candidates.iter().any(|c| matches!(c.target, Target::Relation(_)) && c.evidence == Evidence::Name)) =>
                {
                    if let Some((_, Role::Link(l))) = previous {
                        let relations: Vec<&Candidate> = links[*l].candidates.iter().filter(|c| matches!(c.target, Target::Relation(_)) && c.evidence == Evidence::Name).collect();
                        let r = target_relation(&self.choose(&relations, &context, wants_time, "relation").target);
                        d.bare_relations.retain(|b| *b != r);
                        d.measures.push(Measure { aggregate: Aggregate::Count, column: None });
                        d.counted = Some(r);
                        add_context(&mut context, r);
                    }
                }
                Role::Aggregate(a) => {
                    let ranking = s.which || top_n || d.ranks_groups();
                    if ranking && superlative(&self.tokens[*at].text).is_some() && s.pending.is_empty() {
                        s.rank = superlative(&self.tokens[*at].text);
                        s.rank_word = Some(self.tokens[*at].text.clone());
                    } else if matches!(previous, Some((p, Role::Aggregate(_)))
                        if (*at > p + 1 && self.tokens[p + 1..*at].iter().all(|t| t.is_any(&["and", "or", ",", "the"])) && self.tokens[p + 1..*at].iter().any(|t| t.is_any(&["and", "or"])))
                            // "min, avg and max": the comma is not a token.
                            || (*at == p + 1 && self.tokens.get(at + 1).is_some_and(|t| t.is_any(&["and", "or"])) && matches!(roles.get(n + 1), Some((_, Role::Aggregate(_))))))
                    {
                        s.pending.push(*a);
                    } else if let Some((p, Role::Aggregate(_))) = previous.filter(|(p, _)| *at > p + 1 && self.tokens[p + 1..*at].iter().all(|t| t.is_filler())) {
                        // "how many were there, and how much did they total?": both asked;
                        // "total" only says again what "how much" asked.
                        let and = self.tokens[p + 1..*at].iter().any(|t| t.is("and"));
                        if s.pending.last() != Some(a) && and {
                            s.pending.push(*a);
                        } else if s.pending.last() != Some(a) {
                            s.pending = vec![*a];
                        }
                    } else {
                        s.pending = vec![*a];
                    }
                    s.pending_word = Some(self.tokens[*at].text.clone());
                }
                Role::Distinct => s.distinct = true,
                Role::GroupBy => {
                    let said_by = self.tokens[*at..].iter().take(3).any(|t| t.is_any(&["by", "per"]));
                    let later_by = roles[n + 1..].iter().any(|(_, r)| matches!(r, Role::GroupBy));
                    // "top 5 countries by revenue": after a ranked group, "by" names the measure.
                    let verb = self.tokens[*at].is_any(&["break", "broken", "split", "segmented", "grouped", "bucketed"]);
                    if !said_by && later_by && verb {
                        // "break down our devices by site": the devices are counted, by site.
                    } else if d.ranks_groups() && d.measures.is_empty() {
                        s.sorting = true;
                    } else {
                        s.grouping = true;
                    }
                }
                Role::SortBy => s.sorting = true,
                // "which browser", not "what was the total …".
                Role::Which => {
                    // "which of its sensors", "which of the pages": which sensors.
                    let partitive = |j: usize| self.tokens[j].is("of") && j == at + 1 || j == at + 2 && self.tokens[at + 1].is("of") && self.tokens[j].is_any(&["its", "their", "the", "our", "these", "those", "your"]);
                    // "which readings went below -22? show them": the rows themselves.
                    let show_them = self.tokens.windows(2).any(|w| w[0].is_any(&["show", "list", "give"]) && w[1].is_any(&["them", "those", "all"]))
                        || self.tokens.windows(3).any(|w| w[0].is_any(&["show", "give"]) && w[1].is("me") && w[2].is_any(&["them", "those"]));
                    // "- which page, which browser, and when": columns asked in a list.
                    s.which = !show_them && !self.lists_whiches() && matches!(roles.get(n + 1), Some((next, Role::Link(_) | Role::Rank(_))) if (at + 1..*next).all(|j| self.used[j] || partitive(j)));
                    // "Which freezer readings … were warmer than -16.5 °C? sensor name, reading
                    // and timestamp": rows (a relation with no label of its own), listed with
                    // their time — not groups.
                    let rows_listed = time_listed
                        && match (roles.get(n + 1), roles.get(n + 2)) {
                            (Some((_, Role::Link(a))), Some((_, Role::Link(b)))) => {
                                links[*a].end == links[*b].start
                                    && links[*a].candidates.iter().any(|c| matches!(c.target, Target::Value(..)))
                                    && links[*b].candidates.iter().any(|c| matches!(c.target, Target::Relation(r) if c.evidence == Evidence::Name && self.label_column(r).is_none() && self.has_time(r)))
                            }
                            _ => false,
                        };
                    if rows_listed {
                        s.which = false;
                    }
                    // "Of the Austin devices, which has the highest …": which of them.
                    let of_them = match previous {
                        Some((_, Role::Link(l))) if self.tokens[0].is("of") && self.tokens[*at].pause_before => {
                            links[*l].candidates.iter().find_map(|c| match c.target {
                                Target::Relation(r) if d.bare_relations.contains(&r) => Some(r),
                                _ => None,
                            })
                        }
                        _ => None,
                    };
                    if let (false, Some(r)) = (s.which, of_them) {
                        d.bare_relations.retain(|b| *b != r);
                        d.group_relations.push(r);
                        s.which = true;
                    }
                }
                Role::Rank(direction) => {
                    s.rank = Some(*direction);
                    s.rank_word = Some(self.tokens[*at].text.clone());
                }
                Role::Not => s.negate = true,
                Role::Direction(direction) => s.direction = Some(*direction),
                Role::Compare(comparison, value, high) => self.place_comparison(links, roles, n, at, (comparison, value, high), previous, last_measure, &mut s, &mut d, &context),
                // The unit was read with the number before it ("€400 - order numbers": a
                // sign before the number, and the words after it are no unit).
                Role::Link(_) if s.unit_at == Some(*at) && UNITS.contains(&self.tokens[*at].text.as_str()) => {}
                // "sensor names": the names of the sensors; the first word only says whose.
                Role::Link(l) if self.label_follows(&links[*l], links.get(l + 1)).is_some() => {
                    if let Some(r) = self.label_follows(&links[*l], links.get(l + 1)) {
                        add_context(&mut context, r);
                    }
                }
                Role::Link(l) => {
                    let link = &links[*l];
                    self.placing = Some(link.start);
                    let before = d.subject_size();
                    // "Delivered orders only: top 5 customer countries …": what comes before
                    // the ranking, and a pause before it, only qualifies.
                    let qualifier = top_n && self.ranking_word_after_pause(link.start);
                    self.place_link(link, n, roles, &mut s, &mut d, &mut context, top_n && !qualifier, wants_time)?;
                    s.subject_said |= d.subject_size() != before && !qualifier;
                    self.placing = None;
                }
            }
        }
        self.finish(links, d, s, named, context, time)
    }

    /// "slowest page by mean load time", "the busiest country": a superlative opening the
    /// question before a singular noun that is not a relation's row ("the largest order"
    /// is an order) asks which group ranks first; so does "most" with an adjective ("most
    /// humid sensor"). Returns the superlative's role index, and whether an adjective's
    /// link stands between it and the noun.
    fn leading_superlative(&self, links: &[Link], roles: &[(usize, Role)]) -> Option<(usize, bool)> {
        let k = roles.iter().position(|(at, _)| (0..*at).all(|j| self.tokens[j].is_any(&["the", "show", "list", "find", "give", "me", "what", "what's", "is", "was"])))?;
        let (at, role) = &roles[k];
        let ranks = matches!(role, Role::Rank(_)) || (matches!(role, Role::Aggregate(_)) && superlative(&self.tokens[*at].text).is_some());
        let Some((_, Role::Link(mut l))) = roles.get(k + 1) else { return None };
        // "most humid sensor": "most" and the adjective's column, then the noun.
        let adjective = self.tokens[*at].is_any(&["most", "least"])
            && links[l].candidates.iter().all(|c| self.candidate_is(c, is_numeric))
            && matches!(roles.get(k + 2), Some((_, Role::Link(n))) if links[*n].start == links[l].end);
        if adjective {
            let Some((_, Role::Link(n))) = roles.get(k + 2) else { return None };
            l = *n;
        }
        let l = &l;
        let noun = &self.tokens[links[*l].end - 1];
        // ("the largest order" is an order, ranked by its amount; "the busiest device" has
        // nothing of its own to rank by: the devices, ranked by their readings.)
        let word = &self.tokens[*at].text;
        let row_noun = (0..self.catalog.relations.len()).any(|r| {
            self.is_relation_noun(r, noun) && (self.adjective_column(r, word).is_some() || self.main_measure(r).is_some())
        });
        let singular = noun.text == noun.stem && !noun.quoted;
        // "max temperature", "largest purchase amount": a measure's extreme, not a group
        // ("page" whose comment mentions load times is still a page).
        let best = links[*l].best_evidence();
        let relation_as_good = links[*l].candidates.iter().any(|c| matches!(c.target, Target::Relation(_)) && c.evidence == best);
        let measure = !relation_as_good && links[*l].candidates.iter().any(|c| self.candidate_is(c, is_numeric) && !is_key_name(&self.column(as_column(&c.target)).name));
        // "largest bank transfer", "coldest freezer reading": rows of that kind, ranked.
        let value = links[*l].candidates.iter().any(|c| matches!(c.target, Target::Value(..) | Target::Prefix(..)));
        let measure = measure || value;
        let next_to = links[*l].start == at + 1 || adjective;
        (ranks && next_to && singular && !row_noun && !measure && (adjective || !self.tokens[*at].is_any(&["most", "least", "top", "bottom"]))).then_some((k, adjective))
    }

}

fn target_relation(t: &Target) -> usize {
    match t {
        Target::Relation(r) | Target::Column(r, _) | Target::Value(r, _, _) | Target::Prefix(r, _, _) => *r,
    }
}

fn as_column(t: &Target) -> ColumnRef {
    match t {
        Target::Column(r, c) | Target::Value(r, c, _) | Target::Prefix(r, c, _) => ColumnRef { relation: *r, column: *c },
        Target::Relation(_) => unreachable!("a column candidate"),
    }
}

/// A comparison's filter; with a second number a range ("between 10 and 20"), or what
/// lies outside it when the comparison is `Less` ("below 20 or above 90").
fn number_filter(column: ColumnRef, comparison: Comparison, value: f64, high: Option<f64>) -> Filter {
    match high {
        Some(high) if comparison == Comparison::Less => Filter::Outside { column, low: value, high },
        Some(high) => Filter::Range { column, low: value, high },
        None => Filter::Number { column, comparison, value },
    }
}

fn filter_column(f: &Filter) -> ColumnRef {
    match f {
        Filter::Values { column, .. }
        | Filter::Prefix { column, .. }
        | Filter::Like { column, .. }
        | Filter::Number { column, .. }
        | Filter::Range { column, .. }
        | Filter::Outside { column, .. }
        | Filter::Boolean { column, .. }
        | Filter::Recent { column, .. }
        | Filter::Ago { column, .. }
        | Filter::Before { column, .. }
        | Filter::Period { column, .. } => *column,
    }
}

/// Words that may name data: not question vocabulary, numbers, units or quoted values.
fn is_content_word(t: &Token) -> bool {
    const QUESTION_WORDS: &[&str] = &[
        "how", "many", "much", "number", "count", "distinct", "unique", "different", "separate", "sorted", "ordered", "ranked", "grouped",
        "broken", "split", "segmented", "per", "by", "each", "every", "across", "which", "what", "not", "non", "excluding", "except",
        "without", "outside", "ascending", "descending", "asc", "desc", "least", "most", "than", "or", "and", "between",
        "breakdown", "common", "popular", "frequent",
    ];
    let word = t.text.as_str();
    !t.quoted
        && t.number.is_none()
        && t.date.is_none()
        && word.chars().any(char::is_alphabetic)
        && !FILLER.contains(&word)
        && !UNITS.contains(&word)
        && !QUESTION_WORDS.contains(&word)
        && aggregate_word(word).is_none()
        && superlative(word).is_none()
        && time_unit(word).is_none()
        && month(word).is_none()
}

/// A column naming a thing rather than measuring one.
fn is_key_name(name: &str) -> bool {
    name == "id" || name.ends_with("_id")
}

fn add_context(context: &mut Vec<usize>, r: usize) {
    if !context.contains(&r) {
        context.push(r);
    }
}

fn with_first(context: &[usize], first: usize) -> Vec<usize> {
    std::iter::once(first).chain(context.iter().copied().filter(|r| *r != first)).collect()
}

fn aggregate_words(a: Aggregate) -> &'static str {
    match a {
        Aggregate::Sum => "total",
        Aggregate::Avg => "average",
        Aggregate::Min => "minimum",
        Aggregate::Max => "maximum",
        Aggregate::Median => "median",
        Aggregate::Spread => "spread",
        Aggregate::Count | Aggregate::CountDistinct => "count",
    }
}

/// "the lowest temperature" ranks by the minimum; "the slowest pages" by the average.
fn extreme_aggregate(word: &str) -> Option<Aggregate> {
    match word {
        "highest" | "largest" | "biggest" | "max" | "maximum" | "peak" | "greatest" => Some(Aggregate::Max),
        "lowest" | "smallest" | "min" | "minimum" => Some(Aggregate::Min),
        _ => None,
    }
}

impl Reader<'_> {
    /// Whether the question groups only by stored categories (segments, sites), not by
    /// things that have a label (customers by name).
    fn groups_categories(&self, d: &Draft) -> bool {
        !d.groups.is_empty() && d.group_relations.is_empty() && d.groups.iter().all(|g| self.is_categorical(*g) && self.label_column(g.relation) != Some(*g) && !is_key_name(&self.column(*g).name))
    }

    /// Whether "top"/"bottom" comes after `at` with a pause between them.
    fn ranking_word_after_pause(&self, at: usize) -> bool {
        self.tokens.iter().enumerate().skip(at + 1).find(|(_, t)| t.is_any(&["top", "bottom"])).is_some_and(|(p, _)| self.tokens[at + 1..=p].iter().any(|t| t.pause_before))
    }
}

fn top_n_or_rank(time: &Time, walk: &Walk) -> bool {
    (time.rank.is_some() && !time.by_time) || walk.rank.is_some()
}

/// A stored value, or the start of several ("/blog" for "/blog/…").
#[derive(Debug, Clone, PartialEq)]
struct Match {
    text: String,
    prefix: bool,
}

/// What the question's words have asked for so far.
#[derive(Debug, Default)]
struct Draft {
    measures: Vec<Measure>,
    groups: Vec<ColumnRef>,
    /// "per customer": grouped by the key of a relation (resolved once the base is known).
    group_relations: Vec<usize>,
    /// "enterprise page views": the relation a value before it qualifies.
    qualified: Option<usize>,
    /// "distinct customers": counted by the key of a relation.
    distinct_relations: Vec<usize>,
    values: Vec<(ColumnRef, Match, bool)>,
    filters: Vec<Filter>,
    having: Vec<Having>,
    /// Conditions on a measure: HAVING when grouped, else on the rows.
    measure_compares: Vec<(usize, Comparison, f64, Option<f64>)>,
    bare_columns: Vec<ColumnRef>,
    bare_relations: Vec<usize>,
    /// Columns a number was read as a value of.
    claimed_columns: Vec<ColumnRef>,
    order_column: Option<(ColumnRef, bool)>,
    ranked_group: Option<ColumnRef>,
    /// The relation whose rows `count(*)` counts.
    counted: Option<usize>,
    /// "in which month …": the time bucket is ranked (see [`Time::ranked_bucket`]).
    ranked_bucket: bool,
    /// "… who placed at least one order": counted where they appear in that relation.
    appears_in: Option<usize>,
    /// A plural text column the question is about ("regions with …").
    plural_subject: Option<ColumnRef>,
}

impl Draft {
    /// How much of what the question is about has been read: groups, measures, ordering.
    fn subject_size(&self) -> (usize, usize, usize, bool, bool, bool) {
        (self.groups.len(), self.measures.len(), self.group_relations.len(), self.ranked_group.is_some(), self.order_column.is_some(), self.counted.is_some())
    }

    /// The groups are ranked by the measure, and the best returned.
    fn ranks_groups(&self) -> bool {
        self.ranked_group.is_some() || self.ranked_bucket
    }
}

/// Adjectives after "how" that ask for an average ("how fast", "how warm").
const HOW_ADJECTIVES: &[&str] = &["fast", "slow", "quick", "quickly", "long", "hot", "cold", "warm", "big", "large", "expensive", "heavy", "humid"];

/// Verbs saying a thing came into being: a count of such things in a time range needs
/// their own time, not the time of rows about them.
const CREATION_VERBS: &[&str] = &["registered", "signed", "joined", "opened", "created", "founded", "onboarded", "installed", "added", "built"];

/// Verbs of a single event: "devices whose battery dropped below 10%" asks for rows that
/// did, not for an average that did.
const EVENT_VERBS: &[&str] = &[
    "hit", "hits", "reached", "reach", "reaches", "exceeded", "exceed", "exceeds", "dropped", "drop", "drops", "dipped", "fell",
    "fall", "falls", "went", "spiked", "peaked", "rose", "climbed", "reported", "recorded", "logged", "saw", "touched", "ever", "sent",
];

/// Nouns that ask for a number of rows ("traffic from google").
const COUNT_NOUNS: &[&str] = &["traffic", "visits", "volume", "activity"];

/// State while walking the question's roles left to right.
#[derive(Debug, Default)]
struct Walk {
    pending: Vec<Aggregate>,
    distinct: bool,
    grouping: bool,
    sorting: bool,
    negate: bool,
    which: bool,
    rank: Option<bool>,
    /// The superlative that set `rank` ("lowest", "slowest").
    rank_word: Option<String>,
    direction: Option<bool>,
    compare: Option<(Comparison, f64, Option<f64>)>,
    last_numeric: Option<ColumnRef>,
    last_measure: Option<usize>,
    /// A unit word already read with a comparison's number.
    unit_at: Option<usize>,
    /// Where the pending comparison's number stands.
    compare_at: Option<usize>,
    /// An aggregate word already read as part of a comparison ("on average").
    consumed_at: Option<usize>,
    /// The word of the last aggregate ("coldest": the temperature's minimum).
    pending_word: Option<String>,
    /// A link has said what the question is about (a group, a measure, an order), not
    /// only a value that filters it.
    subject_said: bool,
}
