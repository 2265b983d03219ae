//! What the catalog's shape says: which relation a candidate belongs to and how
//! relations join (`<thing>_id` keys), a relation's measure and time columns, and the
//! choice among candidates by the relations the question is already about; and what a
//! link says given that shape (a relation's rows, a group, a label, a foreign key).

use std::collections::{BTreeSet, VecDeque};

use crate::ask::link::{is_numeric, is_temporal, Candidate, Evidence, Link, Target};
use crate::ask::plan::{ColumnRef, GroupKey, Join, OrderKey, QueryPlan};
use crate::ask::words::{tokenize, Token};
use super::{add_context, as_column, filter_column, is_key_name, target_relation, Reader};
use crate::ask::words::FILLER;
use streamhouse_executor::Refusal;

impl Reader<'_> {
    /// Whether the word is relation `r`'s own noun ("orders", "reading"): the last word of
    /// its name, by stem.
    pub(super) fn is_relation_noun(&self, r: usize, t: &Token) -> bool {
        crate::ask::words::identifier_words(&self.catalog.relations[r].name).last() == Some(&t.stem)
    }

    /// Whether the word is some relation's own noun.
    pub(super) fn names_a_relation(&self, t: &Token) -> bool {
        (0..self.catalog.relations.len()).any(|r| self.is_relation_noun(r, t))
    }

    /// "enterprise page views", "Germany orders": a stored value right before a relation
    /// named outright, of another relation joined to it, says which of its rows — the
    /// named relation is what is counted.
    pub(super) fn qualified_relation(&self, links: &[Link]) -> Option<usize> {
        links.windows(2).find_map(|pair| {
            let (value, noun) = (&pair[0], &pair[1]);
            let named = noun.candidates.iter().find_map(|c| match (&c.target, c.evidence) {
                (Target::Relation(r), Evidence::Name) => Some(*r),
                _ => None,
            })?;
            let plural = self.tokens[noun.end - 1].text != self.tokens[noun.end - 1].stem;
            let qualifies = value.candidates.iter().any(|c| match (&c.target, c.evidence) {
                (Target::Value(r, _, _), Evidence::Value) => *r != named && self.key_pair(named, *r).is_some(),
                _ => false,
            });
            (noun.start == value.end && plural && qualifies).then_some(named)
        })
    }

    /// The column a ranking adjective measures in `r`: "slowest" its latency, "coldest"
    /// its temperature; the relation's measure for "largest", "cheapest" and the like.
    pub(super) fn adjective_column(&self, r: usize, word: &str) -> Option<ColumnRef> {
        const MEASURED: &[(&[&str], &[&str])] = &[
            (&["slowest", "fastest", "quickest", "longest", "shortest", "slower", "faster", "quicker", "longer", "shorter"], &["latency", "duration", "load", "elapsed", "response"]),
            (&["coldest", "warmest", "hottest", "coolest", "colder", "warmer", "hotter", "cooler"], &["temperature", "temp"]),
            (&["wettest", "driest", "humid", "humidest", "drier", "wetter", "dampest", "damper"], &["humidity"]),
        ];
        let (_, markers) = MEASURED.iter().find(|(words, _)| words.contains(&word))?;
        self.catalog.relations[r].columns.iter().enumerate().find_map(|(i, c)| {
            let mut words: Vec<String> = crate::ask::words::identifier_words(&c.name);
            if let Some(comment) = &c.comment {
                words.extend(tokenize(comment).into_iter().map(|t| t.stem));
            }
            (is_numeric(&c.data_type) && words.iter().any(|w| markers.contains(&w.as_str()))).then_some(ColumnRef { relation: r, column: i })
        })
    }

    /// The one numeric column among `relations` described in the unit typed after a
    /// number ("33 degrees": the temperature in degrees Celsius).
    pub(super) fn unit_column(&self, relations: &[usize], number_at: usize) -> Option<ColumnRef> {
        const UNIT_WORDS: &[(&[&str], &[&str])] = &[
            (&["degree", "degrees", "celsius", "c", "°c"], &["degree", "celsius"]),
            (&["ms", "millisecond", "milliseconds"], &["millisecond", "ms"]),
            (&["euro", "euros", "eur", "€"], &["euro", "eur"]),
            (&["dollar", "dollars", "usd", "$"], &["dollar", "usd"]),
        ];
        // "$40", "€500": a currency sign typed before the number.
        let sign = self.tokens.get(number_at).and_then(|t| self.question.chars().nth(t.span.0.checked_sub(1)?)).filter(|c| matches!(c, '$' | '€')).map(String::from);
        let unit = sign.or_else(|| self.tokens.get(number_at + 1).map(|t| t.text.clone()))?;
        let (_, markers) = UNIT_WORDS.iter().find(|(words, _)| words.contains(&unit.as_str()))?;
        let found: Vec<ColumnRef> = relations
            .iter()
            .flat_map(|&r| self.catalog.relations[r].columns.iter().enumerate().map(move |(i, c)| (r, i, c)))
            .filter(|(_, _, c)| is_numeric(&c.data_type) && !c.name.ends_with("_id"))
            .filter(|(_, _, c)| {
                let mut words = crate::ask::words::identifier_words(&c.name);
                words.extend(c.comment.iter().flat_map(|t| tokenize(t)).map(|t| t.stem));
                words.iter().any(|w| markers.contains(&w.as_str()))
            })
            .map(|(r, i, _)| ColumnRef { relation: r, column: i })
            .collect();
        (found.len() == 1).then(|| found[0])
    }

    /// A number in the unit the column stores: "1.2 seconds" of `latency_ms` is 1200.
    pub(super) fn scaled(&self, value: f64, c: ColumnRef, number_at: usize) -> f64 {
        let unit = self.tokens.get(number_at + 1).map(|t| t.text.as_str());
        let name = self.column(c).name.to_lowercase();
        match unit {
            Some("second" | "seconds" | "sec" | "secs" | "s") if name.ends_with("_ms") => value * 1000.0,
            Some("minute" | "minutes" | "min" | "mins") if name.ends_with("_ms") => value * 60_000.0,
            _ => value,
        }
    }

    pub(super) fn has_time(&self, r: usize) -> bool {
        self.catalog.relations[r].columns.iter().any(|c| is_temporal(&c.data_type))
    }

    /// A relation with a time column holding `r`'s key: (relation, its key column).
    pub(super) fn timed_relation_with_key(&self, r: usize, context: &[usize]) -> Option<(usize, ColumnRef)> {
        let order: Vec<usize> = context.iter().copied().chain(0..self.catalog.relations.len()).collect();
        for t in order {
            if t == r || !self.has_time(t) {
                continue;
            }
            if let Some(key) = self.key_column(r, &[t]).filter(|k| k.relation == t) {
                return Some((t, key));
            }
        }
        None
    }

    pub(super) fn candidate_is(&self, c: &Candidate, test: fn(&arrow::datatypes::DataType) -> bool) -> bool {
        match c.target {
            Target::Column(r, col) => test(&self.catalog.relations[r].columns[col].data_type),
            _ => false,
        }
    }

    /// Picks among candidates: in a relation the question is about, then by evidence;
    /// notes a choice between equals.
    pub(super) fn choose(&mut self, candidates: &[&Candidate], context: &[usize], wants_time: bool, what: &str) -> Candidate {
        let rank = |c: &Candidate| {
            let r = target_relation(&c.target);
            let in_context = context.contains(&r);
            let joinable = context.iter().any(|x| self.key_pair(*x, r).is_some());
            let timed = wants_time && self.has_time(r);
            let position = context.iter().position(|x| *x == r).map(|p| usize::MAX - p).unwrap_or(0);
            // "takings from purchases": the relation the purchases are stored in.
            let support = self
                .support
                .iter()
                .filter(|(start, _)| Some(*start) != self.placing)
                .flat_map(|(_, relations)| relations.iter().filter(|(x, _)| *x == r).map(|(_, e)| *e))
                .max();
            // "weekly revenue in February 2025": a relation with no rows then is a poor reading.
            let plausible = self.asked_span.is_none_or(|(from, to)| {
                let spans: Vec<(i64, i64)> = self.catalog.relations[r].columns.iter().filter_map(|c| c.time_span).collect();
                spans.is_empty() || spans.iter().any(|(lo, hi)| *lo < to && *hi >= from)
            });
            (in_context, joinable, plausible, c.evidence, support, timed, position)
        };
        let mut sorted: Vec<&Candidate> = candidates.to_vec();
        sorted.sort_by_key(|c| std::cmp::Reverse(rank(c)));
        let best = sorted[0].clone();
        if sorted.len() > 1 && rank(sorted[1]) == rank(&best) {
            let describe = |c: &Candidate| match &c.target {
                Target::Relation(r) => self.catalog.relations[*r].name.clone(),
                Target::Column(r, col) => format!("{}.{}", self.catalog.relations[*r].name, self.catalog.relations[*r].columns[*col].name),
                Target::Value(r, col, v) => format!("{}.{} = '{v}'", self.catalog.relations[*r].name, self.catalog.relations[*r].columns[*col].name),
                Target::Prefix(r, col, v) => format!("{}.{} LIKE '{v}%'", self.catalog.relations[*r].name, self.catalog.relations[*r].columns[*col].name),
            };
            self.notes.push(format!("the {what} could be {} or {}; chose {}", describe(sorted[0]), describe(sorted[1]), describe(&best)));
        }
        best
    }

    /// The column of `base` (or of a context relation) that holds the key of relation `r`.
    pub(super) fn key_column(&self, r: usize, context: &[usize]) -> Option<ColumnRef> {
        let relation = &self.catalog.relations[r];
        let singular = crate::ask::words::stem(&relation.name.to_lowercase());
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

    /// The relation a key column names: `orders.customer_id` the customers, `devices.id`
    /// the devices.
    pub(super) fn keyed_relation(&self, c: ColumnRef) -> Option<usize> {
        let name = self.column(c).name.to_lowercase();
        if name == "id" {
            return Some(c.relation);
        }
        let thing = name.strip_suffix("_id")?;
        let thing = crate::ask::words::stem(thing);
        let named = |r: &&streamhouse_executor::AskRelation| crate::ask::words::stem(&r.name.to_lowercase()) == thing;
        let schema = &self.catalog.relations[c.relation].schema;
        let relations = &self.catalog.relations;
        // The same schema's first, then any.
        relations.iter().position(|r| &r.schema == schema && named(&r)).or_else(|| relations.iter().position(|r| named(&r)))
    }

    /// The text column people know a relation's rows by (`customers.name`), when it has one:
    /// `name`, `full_name`, `display_name`, `username`, `title` or `<thing>_name`.
    pub(super) fn label_column(&self, r: usize) -> Option<ColumnRef> {
        let relation = &self.catalog.relations[r];
        let thing = crate::ask::words::stem(&relation.name.to_lowercase());
        let own = format!("{thing}_name");
        relation
            .columns
            .iter()
            .position(|c| {
                let name = c.name.to_lowercase();
                matches!(c.data_type, arrow::datatypes::DataType::Utf8 | arrow::datatypes::DataType::LargeUtf8 | arrow::datatypes::DataType::Utf8View)
                    && (LABEL_NAMES.contains(&name.as_str()) || name == own)
            })
            .map(|c| ColumnRef { relation: r, column: c })
    }

    /// Whether a relation's rows are people or organisations (customers, users, members):
    /// asked "who" or "which customers", the answer is their names, not their ids.
    pub(super) fn holds_people(&self, r: usize) -> bool {
        let words = crate::ask::words::identifier_words(&self.catalog.relations[r].name);
        words.last().is_some_and(|w| PEOPLE_NOUNS.contains(&w.as_str()))
    }

    /// The same-named column in `base`, when the value linked to another relation's copy.
    pub(super) fn same_column_in(&self, c: ColumnRef, base: usize) -> ColumnRef {
        if c.relation == base {
            return c;
        }
        let name = &self.column(c).name;
        match self.catalog.relations[base].columns.iter().position(|x| &x.name == name) {
            Some(column) => ColumnRef { relation: base, column },
            None => c,
        }
    }

    pub(super) fn is_money(&self, c: ColumnRef) -> bool {
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
    pub(super) fn main_measure(&self, r: usize) -> Option<ColumnRef> {
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
    pub(super) fn time_column(&mut self, base: usize, mentioned: &[ColumnRef], context: &[usize]) -> Result<ColumnRef, Refusal> {
        let reachable = |c: &&ColumnRef| c.relation == base || self.key_pair(base, c.relation).is_some();
        if let Some(c) = mentioned.iter().filter(reachable).find(|c| is_temporal(&self.column(**c).data_type)) {
            return Ok(*c);
        }
        // "pages enterprise users visited in the last 6 hours": the time of the visits, not
        // of the users' sign-up — unless the question speaks of joining.
        let signup_time = |r: usize| {
            let columns = &self.catalog.relations[r].columns;
            let temporal: Vec<&streamhouse_executor::AskColumn> = columns.iter().filter(|c| is_temporal(&c.data_type)).collect();
            matches!(temporal[..], [c] if ["sign", "regist", "join"].iter().any(|w| c.name.contains(w)))
        };
        const JOINING: &[&str] = &["signed", "signup", "signups", "sign", "signing", "joined", "join", "joining", "registered", "register", "registration", "registrations", "new", "created", "since"];
        let speaks_of_joining = self.tokens.iter().any(|t| t.is_any(JOINING));
        let event_relation = context.iter().copied().find(|&r| r != base && self.key_pair(base, r).is_some() && self.has_time(r) && !signup_time(r));
        let base = match event_relation {
            Some(r) if signup_time(base) && !speaks_of_joining => r,
            _ => base,
        };
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
        // "which indoor sensor ran hottest over the last 24 hours": the time of the one
        // timed relation about the base's rows.
        let timed: Vec<usize> = (0..self.catalog.relations.len()).filter(|&r| r != base && self.has_time(r) && self.key_pair(base, r).is_some()).collect();
        if let [r] = timed[..] {
            if let Some(column) = self.catalog.relations[r].columns.iter().position(|c| is_temporal(&c.data_type)) {
                let c = ColumnRef { relation: r, column };
                self.notes.push(format!("used {} as the time of the {}", self.column_name(c), self.catalog.relations[base].name));
                return Ok(c);
            }
        }
        Err(Refusal(format!("{} has no time column to apply the time range to", self.catalog.relations[base].name)))
    }

    /// Joins every relation the plan uses to the base, along `<thing>_id` keys.
    pub(super) fn join(&mut self, plan: &mut QueryPlan) -> Result<(), Refusal> {
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
        plan.filters.iter().for_each(|f| note(&filter_column(f)));
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
    pub(super) fn join_path(&self, joined: &[usize], target: usize) -> Option<Vec<Join>> {
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
    pub(super) fn key_pair(&self, a: usize, b: usize) -> Option<(ColumnRef, ColumnRef)> {
        let (ra, rb) = (&self.catalog.relations[a], &self.catalog.relations[b]);
        let singular = |name: &str| crate::ask::words::stem(&name.to_lowercase());
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

    /// A plural noun for a relation's rows whose only numbers are ids ("pages", "views").
    pub(super) fn names_rows(&self, link: &Link) -> bool {
        let last = &self.tokens[link.end - 1];
        let plural = last.text != last.stem;
        let relation = link.candidates.iter().any(|c| matches!(c.target, Target::Relation(_)));
        let numbers_are_ids = link
            .candidates
            .iter()
            .filter(|c| self.candidate_is(c, is_numeric))
            .all(|c| is_key_name(&self.column(as_column(&c.target)).name));
        plural && relation && numbers_are_ids
    }

    /// The relation whose label column `next` names right after `link` names that relation
    /// ("sensor names", "customer name"), or whose column a singular relation word
    /// qualifies ("buyer country": the customers' country).
    pub(super) fn label_follows(&self, link: &Link, next: Option<&Link>) -> Option<usize> {
        let next = next.filter(|n| n.start == link.end)?;
        if link.candidates.iter().any(|c| matches!(c.target, Target::Value(..) | Target::Prefix(..))) {
            return None;
        }
        let word = &self.tokens[link.end - 1];
        let qualifier = word.text == word.stem && !word.quoted;
        link.candidates.iter().filter(|c| matches!(c.target, Target::Relation(_))).map(|c| target_relation(&c.target)).find(|r| {
            let label = self.label_column(*r);
            next.candidates.iter().any(|c| {
                let Target::Column(cr, cc) = c.target else { return false };
                let column = ColumnRef { relation: cr, column: cc };
                c.evidence == Evidence::Name && (Some(column) == label || (qualifier && cr == *r && !is_key_name(&self.column(column).name)))
            })
        })
    }

    /// A plural noun that may name a relation's rows ("pages", "readings").
    pub(super) fn plural_relation_word(&self, link: &Link) -> bool {
        let last = &self.tokens[link.end - 1];
        last.text != last.stem && !last.quoted && link.candidates.iter().any(|c| matches!(c.target, Target::Relation(_)))
    }

    /// A column whose values name categories: text, or integer codes with few values.
    pub(super) fn is_categorical(&self, c: ColumnRef) -> bool {
        let column = self.column(c);
        !is_temporal(&column.data_type) && (!is_numeric(&column.data_type) || is_key_name(&column.name) || column.values.is_some())
    }

    /// A `<thing>_id` column of a relation that is not the thing (`readings.device_id`).
    pub(super) fn is_foreign_key(&self, c: ColumnRef) -> bool {
        let name = &self.column(c).name;
        let relation = crate::ask::words::identifier_words(&self.catalog.relations[c.relation].name);
        let owner = name.strip_suffix("_id").map(crate::ask::words::stem);
        owner.is_some_and(|o| relation.last() != Some(&o) && relation.join("_") != o)
    }

    /// The context's relations, then those one key join away.
    pub(super) fn reachable(&self, context: &[usize]) -> Vec<usize> {
        let mut out: Vec<usize> = context.to_vec();
        for r in 0..self.catalog.relations.len() {
            if !out.contains(&r) && context.iter().any(|x| self.key_pair(*x, r).is_some()) {
                out.push(r);
            }
        }
        out
    }

    /// A link naming a text column and no relation: a group ("sites", "browsers").
    pub(super) fn names_a_group(&self, link: Option<&Link>) -> bool {
        link.is_some_and(|l| {
            let text_column = l
                .candidates
                .iter()
                .filter(|c| matches!(c.target, Target::Column(r, col) if !is_numeric(&self.catalog.relations[r].columns[col].data_type)))
                .map(|c| c.evidence)
                .max();
            let other = l.candidates.iter().filter(|c| matches!(c.target, Target::Relation(_) | Target::Value(..))).map(|c| c.evidence).max();
            text_column.is_some_and(|t| other.is_none_or(|o| o < t))
        })
    }

    /// Among equally good candidates for a group key or a distinct count, text columns over
    /// numbers, ids and times.
    pub(super) fn prefer_text<'c>(&self, columns: Vec<&'c Candidate>) -> Vec<&'c Candidate> {
        let best = columns.iter().map(|c| c.evidence).max();
        let text: Vec<&Candidate> = columns
            .iter()
            .copied()
            .filter(|c| {
                Some(c.evidence) == best
                    && matches!(c.target, Target::Column(r, col) if {
                        let t = &self.catalog.relations[r].columns[col].data_type;
                        !is_numeric(t) && !is_temporal(t)
                    })
            })
            .collect();
        if text.is_empty() { columns } else { text }
    }

    /// The first content word of a column's comment, stemmed ("page" of "page path or URL").
    pub(super) fn comment_head(&self, target: &Target) -> Option<String> {
        let Target::Column(r, c) = target else { return None };
        let comment = self.catalog.relations[*r].columns[*c].comment.as_ref()?;
        tokenize(comment).into_iter().find(|t| !FILLER.contains(&t.text.as_str())).map(|t| t.stem)
    }

    pub(super) fn comment_mentions(&self, target: &Target, word: &str) -> bool {
        match target {
            Target::Column(r, c) => self.catalog.relations[*r].columns[*c].comment.as_ref().is_some_and(|comment| tokenize(comment).iter().any(|t| t.text == word)),
            _ => false,
        }
    }

    /// Relations the question names outright, and the relations every link that can
    /// mean only one relation points at: the context for choosing among candidates.
    pub(super) fn context(&self, links: &[Link]) -> (Vec<usize>, Vec<usize>) {
        let mut named: Vec<usize> = Vec::new();
        for link in links {
            let relations: Vec<usize> = link
                .candidates
                .iter()
                .filter_map(|c| if let (Target::Relation(r), Evidence::Name) = (&c.target, c.evidence) { Some(*r) } else { None })
                .collect();
            let has_name_column = link.candidates.iter().any(|c| matches!(c.target, Target::Column(..)) && c.evidence == Evidence::Name);
            let plural = self.tokens[link.end - 1].text != self.tokens[link.end - 1].stem;
            if relations.len() == 1 && (!has_name_column || plural) && !named.contains(&relations[0]) {
                named.push(relations[0]);
            }
        }
        let mut context: Vec<usize> = named.clone();
        for link in links {
            // The one relation of the link's readings, or the one relation it names by more
            // than a concept ("buyers": the customers by their comment, the users only by a concept).
            let mut relations: BTreeSet<usize> = link.candidates.iter().map(|c| target_relation(&c.target)).collect();
            if relations.len() > 1 && link.candidates.iter().all(|c| matches!(c.target, Target::Relation(_))) {
                relations = link.candidates.iter().filter(|c| c.evidence > Evidence::Concept).map(|c| target_relation(&c.target)).collect();
            }
            if relations.len() == 1 {
                add_context(&mut context, *relations.iter().next().expect("one"));
            }
        }
        (named, context)
    }
}

/// Column names that label a row for people to read.
const LABEL_NAMES: &[&str] = &["name", "full_name", "display_name", "username", "user_name", "title"];

/// Nouns (as [`crate::ask::words::identifier_words`] stems them) for relations of people and
/// organisations.
const PEOPLE_NOUNS: &[&str] = &[
    "customer", "client", "user", "member", "employee", "person", "people", "student", "patient", "buyer", "seller", "author",
    "owner", "subscriber", "player", "driver", "contact", "guest", "attendee", "donor", "vendor", "supplier", "partner", "merchant",
    "account", "staff", "worker", "agent", "teacher", "doctor", "shopper",
];
