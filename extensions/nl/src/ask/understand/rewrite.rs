//! Rewrites of a finished plan, for readings the left-to-right walk cannot see whole:
//! a superlative before a row noun ranks those rows ("the warmest reading, with the
//! device's name"), things ranked by what their rows measure ("the 3 warmest sensors"),
//! "worst"/"best" by the column's good side, sums of text counted instead, and
//! conditions said twice kept once.

use super::*;

impl Reader<'_> {
    /// Every rewrite, in order; the plan's relations are joined after.
    pub(super) fn rewrite(&mut self, links: &[Link], plan: &mut QueryPlan, time: &Time, s: &Walk) {
        self.single_row_ranked(plan, s);
        self.rank_rows_named_after_superlative(links, plan, time);
        self.rank_things_by_their_rows(links, plan, time);
        self.rank_by_polarity(plan);
        self.count_what_cannot_be_summed(plan);
        drop_repeated_filters(plan);
    }

    /// "which freezer logged the warmest single reading": the one row with the warmest
    /// reading, and the group it belongs to — not the group with the warmest average.
    fn single_row_ranked(&mut self, plan: &mut QueryPlan, s: &Walk) {
        let Some(word_at) = s.rank_word.as_ref().and_then(|w| self.tokens.iter().position(|t| &t.text == w)) else { return };
        let noun_at = if self.tokens.get(word_at + 1).is_some_and(|t| t.is("single")) { word_at + 2 } else { word_at + 1 };
        let row_noun = self.tokens.get(noun_at).is_some_and(|t| {
            t.text == t.stem && self.names_a_relation(t)
        });
        let averaged = self.tokens.iter().any(|t| t.is_any(&["average", "avg", "mean", "typical", "averaging", "averaged"]));
        let [GroupKey::Column(group)] = plan.group_by[..] else { return };
        let [Measure { column: Some(measured), .. }] = plan.measures[..] else { return };
        if !s.which || !row_noun || averaged || plan.limit != Some(1) || !plan.having.is_empty() {
            return;
        }
        let descending = plan.order.first().is_none_or(|(_, d)| *d);
        self.notes.retain(|n| !n.starts_with("ranked by the"));
        self.notes.push(format!("ranked single rows by {}", self.column_name(measured)));
        plan.group_by.clear();
        plan.measures.clear();
        plan.columns = vec![group];
        plan.order = vec![(OrderKey::Column(measured), descending)];
    }

    /// "the warmest reading ever recorded, with the name of the device", "names and amounts
    /// of the 3 biggest orders placed by Italian customers": the superlative ranks the rows
    /// the noun after it names (by what it measures there); what else is named is shown
    /// beside the ranked value.
    fn rank_rows_named_after_superlative(&mut self, links: &[Link], plan: &mut QueryPlan, time: &Time) {
        const SIZE_WORDS: &[&str] = &["biggest", "largest", "smallest", "highest", "lowest", "priciest", "cheapest"];
        // Not "largest payment for each method", "top 3 slowest pages by average latency";
        // after a pause the details asked ("…: which device recorded it, and how cold?").
        let groups = self.tokens.iter().any(|t| t.is_any(&["each", "per", "every"]));
        let first_pause = self.tokens.iter().position(|t| t.pause_before).unwrap_or(self.tokens.len());
        let asks_before_pause = |words: &[&str]| self.tokens[..first_pause].iter().any(|t| t.is_any(words));
        if groups || asks_before_pause(&["average", "avg", "mean", "total", "sum", "count", "number", "which", "what", "who", "how"]) || !plan.having.is_empty() {
            return;
        }
        let averaged = self.tokens.iter().any(|t| t.is_any(&["average", "averages", "averaged", "avg", "mean", "typical"]));
        let found = (0..self.tokens.len()).find_map(|p| {
            // "most humid reading": the adjective after "most".
            let (p, direction) = match superlative(&self.tokens[p].text) {
                Some(d) if self.tokens[p].is_any(&["most", "least"]) && self.tokens.get(p + 1).is_some_and(|t| superlative(&t.text).is_none() && t.number.is_none()) => (p + 1, d),
                Some(d) if !self.tokens[p].is_any(&["more", "less", "top", "bottom"]) => (p, d),
                _ => return None,
            };
            let word = &self.tokens[p];
            // "the warmest reading", "3 biggest orders"; not "… with the warmest reading".
            let before = if p > 0 && self.tokens[p - 1].is_any(&["most", "least"]) { p - 1 } else { p };
            let opens = before == 0 || self.tokens[before - 1].is_any(&["the", "our", "my"]) || self.tokens[before - 1].number.is_some();
            let clause = before >= 2 && self.tokens[before - 2].is_any(&["with", "having", "has", "had", "by", "for"]);
            if !opens || clause {
                return None;
            }
            let noun_at = if self.tokens.get(p + 1).is_some_and(|t| t.is("single")) { p + 2 } else { p + 1 };
            let noun = self.tokens.get(noun_at)?;
            if noun.text != noun.stem && time.limit.is_none() {
                return None;
            }
            // The relations the noun names: by its link, else by the relation's own noun
            // (read with the ranking: "the 3 biggest orders"); "Warmest indoor reading": a
            // value may stand before the noun.
            let noun_link = links.iter().find(|l| l.start == noun_at);
            let value_then_noun = noun_link.filter(|l| l.candidates.iter().all(|c| matches!(c.target, Target::Value(..) | Target::Column(..)))).and_then(|l| links.iter().find(|n| n.start == l.end && !self.tokens[n.start].pause_before));
            let relations: Vec<usize> = match value_then_noun.or(noun_link) {
                Some(link) => link
                    .candidates
                    .iter()
                    .filter_map(|c| match c.target {
                        Target::Relation(r) if c.evidence >= Evidence::Comment => Some(r),
                        Target::Value(r, _, _) if c.evidence >= Evidence::Value => Some(r),
                        // "slowest page load": the rows whose column the adjective measures.
                        // (Not "the fastest page loads on average".)
                        Target::Column(r, column) if c.evidence >= Evidence::Comment && !averaged && self.adjective_column(r, &word.text) == Some(ColumnRef { relation: r, column }) => Some(r),
                        _ => None,
                    })
                    .collect(),
                None => (0..self.catalog.relations.len()).filter(|&r| self.is_relation_noun(r, noun)).collect(),
            };
            relations.into_iter().find_map(|r| {
                let column = self.adjective_column(r, &word.text).or_else(|| word.is_any(SIZE_WORDS).then(|| self.main_measure(r)).flatten())?;
                Some((r, column, direction))
            })
        });
        let Some((rows, ranked, descending)) = found else { return };
        // "…: when, how much, …": the row's amount.
        let amount = self.main_measure(rows).filter(|_| self.amount_listed);
        if !plan.is_aggregate() && plan.limit.is_some() && plan.order.first().is_some_and(|(k, _)| *k == OrderKey::Column(ranked)) {
            return;
        }
        // What else the question named: listed columns, groups, a text column "measured".
        let mut shown: Vec<ColumnRef> = plan.columns.clone();
        shown.extend(plan.group_by.iter().filter_map(|g| if let GroupKey::Column(c) = g { Some(*c) } else { None }));
        shown.extend(plan.measures.iter().filter_map(|m| m.column.filter(|c| !is_numeric(&self.column(*c).data_type))));
        shown.extend(amount);
        if shown.is_empty() && plan.is_aggregate() {
            // "Biggest PayPal payment: amount and when it was paid", "Warmest indoor reading
            // …, and the name of the sensor that took it": the columns listed after the pause.
            shown = self.listed_after_pause(links, rows, first_pause);
            if let Some(ts) = self.catalog.relations[rows].columns.iter().position(|c| is_temporal(&c.data_type)).filter(|_| time.lists_time) {
                shown.push(ColumnRef { relation: rows, column: ts });
            }
        }
        shown.dedup();
        // "largest order placed by a small business": the largest amount, as asked —
        // unless the whole row is ("…, the whole row please").
        let whole_row = self.asks_whole_row();
        if shown.is_empty() && plan.is_aggregate() && !whole_row {
            return;
        }
        if whole_row {
            shown.clear();
        }
        // The ranked value beside what is named about another relation ("with the name of
        // the device"), or when named itself ("names and amounts of the 3 biggest
        // orders"); "ids of the 3 smallest orders": ids only.
        let about_others = shown.iter().any(|c| c.relation != rows);
        let ranked_named = links.iter().any(|l| l.candidates.iter().any(|k| k.target == Target::Column(ranked.relation, ranked.column)));
        if !shown.is_empty() && !shown.contains(&ranked) && (about_others || ranked_named) {
            shown.push(ranked);
        }
        self.notes.push(format!("ranked {} rows by {}", self.catalog.relations[rows].name, self.column_name(ranked)));
        plan.base = rows;
        plan.joins.clear();
        plan.columns = shown;
        plan.group_by.clear();
        plan.measures.clear();
        plan.distinct = false;
        plan.order = vec![(OrderKey::Column(ranked), descending)];
        plan.limit = Some(time.limit.unwrap_or(1));
    }

    /// The columns named after the first pause, each read in the ranked rows' relation or
    /// one joined to it.
    fn listed_after_pause(&self, links: &[Link], rows: usize, first_pause: usize) -> Vec<ColumnRef> {
        let near = |r: usize| r == rows || self.key_pair(rows, r).is_some();
        links
            .iter()
            .filter(|l| l.start >= first_pause)
            .filter_map(|l| {
                let columns = l.candidates.iter().filter(|c| matches!(c.target, Target::Column(r, _) if near(r)) && c.evidence >= Evidence::Comment);
                columns.max_by_key(|c| (c.evidence, target_relation(&c.target) == rows)).map(|c| as_column(&c.target))
            })
            .collect()
    }

    /// "the 3 warmest sensors", "Warmest 3 indoor sensors (average temperature), names":
    /// things ranked by what their rows measure (the sensors' readings), each by its label.
    fn rank_things_by_their_rows(&mut self, links: &[Link], plan: &mut QueryPlan, time: &Time) {
        // ("Who were our 5 biggest customers …" ranks them; "which …" is read elsewhere.)
        if self.tokens.first().is_some_and(|t| t.is_any(&["which", "what", "how"])) || !plan.having.is_empty() {
            return;
        }
        let found = (0..self.tokens.len()).find_map(|p| {
            let word = &self.tokens[p];
            let direction = superlative(&word.text).filter(|_| !word.is_any(&["most", "least", "more", "less", "top", "bottom"]))?;
            let opens = p == 0 || self.tokens[p - 1].is_any(&["the", "our", "my"]) || self.tokens[p - 1].number.is_some();
            if !opens {
                return None;
            }
            // The things: a plural relation word within the next three words ("indoor sensors").
            // (Not "the 2 driest sites": a column names those groups.)
            let things = links.iter().filter(|l| (p + 1..=p + 3).contains(&l.start)).find_map(|l| {
                let plural = self.tokens[l.end - 1].text != self.tokens[l.end - 1].stem;
                let relation_best = l.candidates.iter().filter(|c| matches!(c.target, Target::Relation(_))).map(|c| c.evidence).max();
                let column_best = l.candidates.iter().filter(|c| matches!(c.target, Target::Column(..)) && !is_key_name(&self.column(as_column(&c.target)).name)).map(|c| c.evidence).max();
                if !plural || relation_best.is_none() || column_best >= relation_best {
                    return None;
                }
                l.candidates.iter().find_map(|c| if let Target::Relation(r) = c.target { Some(r) } else { None })
            })?;
            if self.adjective_column(things, &word.text).is_some() {
                return None;
            }
            // "warmest": what the word measures; "biggest customers by money spent": the
            // money the rows are ordered by.
            let measured = (0..self.catalog.relations.len()).find_map(|r| Some((r, self.adjective_column(r, &word.text).filter(|_| self.key_pair(things, r).is_some())?)));
            let ordered_money = || match plan.order.first() {
                Some((OrderKey::Column(c), _)) if c.relation != things && self.is_money(*c) && self.key_pair(things, c.relation).is_some() => Some((c.relation, *c)),
                _ => None,
            };
            let (rows, column) = measured.or_else(ordered_money)?;
            Some((things, rows, column, direction))
        });
        let Some((things, rows, column, descending)) = found else { return };
        let Some(label) = self.label_column(things).or_else(|| self.key_pair(things, rows).map(|(a, b)| if a.relation == things { a } else { b })) else { return };
        let aggregate = if self.is_money(column) {
            Aggregate::Sum
        } else if self.tokens.iter().any(|t| t.is_any(&["max", "maximum", "peak"])) {
            Aggregate::Max
        } else if self.tokens.iter().any(|t| t.is_any(&["min", "minimum"])) {
            Aggregate::Min
        } else {
            Aggregate::Avg
        };
        if plan.group_by.contains(&GroupKey::Column(label)) && plan.measures.iter().any(|m| m.column == Some(column)) {
            return;
        }
        self.notes.push(format!("ranked each of {} by the {} of {}", self.catalog.relations[things].name, aggregate_words(aggregate), self.column_name(column)));
        plan.base = rows;
        plan.joins.clear();
        plan.columns.clear();
        plan.distinct = false;
        plan.group_by = vec![GroupKey::Column(label)];
        plan.measures = vec![Measure { aggregate, column: Some(column) }];
        plan.order = vec![(OrderKey::Measure(0), descending)];
        plan.limit = Some(time.limit.unwrap_or(1));
    }

    /// "sites ranked by average battery, worst first": "worst" and "best" rank by what is
    /// good in the column ranked by — a low battery is bad, a low latency good. Columns
    /// whose good side the words do not tell (temperature) keep "worst" high and "best" high.
    fn rank_by_polarity(&mut self, plan: &mut QueryPlan) {
        let Some(word) = self.tokens.iter().position(|t| t.is_any(&["worst", "best"])) else { return };
        let worst = self.tokens[word].is("worst");
        let Some((key, descending)) = plan.order.first().cloned() else { return };
        let ranked = match key {
            OrderKey::Measure(m) => plan.measures.get(m).map(|m| m.column),
            OrderKey::Column(c) => Some(Some(c)),
            OrderKey::Group(_) => None,
        };
        let Some(ranked) = ranked else { return };
        // A count (of sales, of visits) is better high.
        let high_is_good = match ranked {
            None => Some(true),
            Some(c) => self.high_is_good(c),
        };
        let Some(high_is_good) = high_is_good else { return };
        let wanted = high_is_good != worst;
        if wanted != descending {
            plan.order[0].1 = wanted;
            self.notes.push(format!("\"{}\" ranks {} first", self.tokens[word].raw, if wanted { "high values" } else { "low values" }));
        }
        // "the worst battery": its lowest value, unless a word asked for the highest.
        let asked_max = self.tokens.iter().any(|t| t.is_any(&["max", "maximum", "highest", "peak"]));
        if let (true, true, false, OrderKey::Measure(m)) = (worst, high_is_good, asked_max, key) {
            if plan.measures[m].aggregate == Aggregate::Max {
                plan.measures[m].aggregate = Aggregate::Min;
            }
        }
    }

    /// "top 5 pages by traffic": traffic (a text column's comment word, the referrer's
    /// "traffic source") cannot be summed or averaged; the rows are counted.
    fn count_what_cannot_be_summed(&mut self, plan: &mut QueryPlan) {
        for m in plan.measures.iter_mut() {
            let arithmetic = matches!(m.aggregate, Aggregate::Sum | Aggregate::Avg | Aggregate::Median);
            if let (true, Some(c)) = (arithmetic, m.column) {
                if !is_numeric(&self.column(c).data_type) {
                    self.notes.push(format!("counted rows: {} holds no numbers to {}", self.column_name(c), aggregate_words(m.aggregate)));
                    *m = Measure { aggregate: Aggregate::Count, column: None };
                }
            }
        }
    }

    /// "…, full row", "the whole row please": every column.
    pub(super) fn asks_whole_row(&self) -> bool {
        (0..self.tokens.len()).any(|i| self.whole_row_word_at(i))
    }

    /// "full row", "the whole record", "the full reading" (a relation's own noun) at `i`.
    pub(super) fn whole_row_word_at(&self, i: usize) -> bool {
        let row_noun = |t: &Token| t.is_any(&["row", "rows", "record", "records"]) || self.names_a_relation(t);
        self.tokens[i].is_any(&["full", "whole", "entire"]) && self.tokens.get(i + 1).is_some_and(row_noun)
    }

    /// Whether a high value of the column is good (battery, revenue) or bad (latency,
    /// cost), by the words of its name and comment; `None` when they do not say.
    fn high_is_good(&self, c: ColumnRef) -> Option<bool> {
        const HIGH_IS_BAD: &[&str] = &["latency", "duration", "delay", "elapsed", "load", "response", "error", "errors", "cost", "price"];
        const HIGH_IS_GOOD: &[&str] = &["battery", "charge", "revenue", "amount", "sales", "profit", "score", "rating", "income"];
        let column = self.column(c);
        let mut words = crate::ask::words::identifier_words(&column.name);
        words.extend(column.comment.iter().flat_map(|comment| tokenize(comment)).map(|t| t.stem));
        if words.iter().any(|w| HIGH_IS_BAD.contains(&w.as_str())) {
            Some(false)
        } else if words.iter().any(|w| HIGH_IS_GOOD.contains(&w.as_str())) {
            Some(true)
        } else {
            None
        }
    }
}

/// A condition said twice ("blog posts (paths under /blog/)") is kept once, and a path
/// value inside a prefix kept ("the docs section (/docs and everything below it)") adds
/// nothing to it.
fn drop_repeated_filters(plan: &mut QueryPlan) {
    let mut kept: Vec<Filter> = Vec::new();
    for filter in std::mem::take(&mut plan.filters) {
        if !kept.contains(&filter) {
            kept.push(filter);
        }
    }
    let prefixes: Vec<(ColumnRef, String)> = kept
        .iter()
        .filter_map(|f| match f {
            Filter::Prefix { column, prefix, negated: false } => Some((*column, prefix.clone())),
            _ => None,
        })
        .collect();
    let inside = |column: &ColumnRef, value: &String| prefixes.iter().any(|(c, p)| c == column && (value == p || value.starts_with(&format!("{p}/"))));
    kept.retain(|f| !matches!(f, Filter::Values { column, values, negated: false } if values.iter().all(|v| inside(column, v))));
    plan.filters = kept;
}
