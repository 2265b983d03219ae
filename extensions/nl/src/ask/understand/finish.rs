//! Finishing a reading: what the walk left (pending aggregates, comparisons, bare
//! columns) becomes measures, filters and groups; the base relation is chosen, time ranges
//! and buckets land on its time column, row questions get their columns and order, and
//! every relation used is joined to the base (after the rewrites of `rewrite.rs`).

use super::*;

impl Reader<'_> {
    pub(super) fn finish(&mut self, links: &[Link], mut d: Draft, mut s: Walk, named: Vec<usize>, mut context: Vec<usize>, time: Time) -> Result<QueryPlan, Refusal> {
        tracing::debug!(draft = ?d, walk = ?s, "ASK draft");
        self.where_is_it_most(links, &mut d, &mut s);
        let mut plan = QueryPlan::default();
        // Leftover aggregates: "how many …" with nothing counted is a row count;
        // "… on average" ranks by the average.
        let mut pending = s.pending.clone();
        if pending == [Aggregate::Count] {
            d.measures.push(Measure { aggregate: Aggregate::Count, column: None });
            pending.clear();
        }
        let ranked = s.rank.is_some() || time.rank.is_some();
        let more: Vec<Aggregate> = pending.iter().copied().skip(1).filter(|a| !matches!(a, Aggregate::Count | Aggregate::CountDistinct)).collect();
        if let (Some(Aggregate::Count), false, false, Some(c)) = (pending.first(), more.is_empty(), ranked, context.iter().find_map(|r| self.main_measure(*r))) {
            // "payments by method: count and total": the count, and the total of the
            // relation's measure.
            if s.compare.is_none() && d.measures.is_empty() {
                d.measures.push(Measure { aggregate: Aggregate::Count, column: None });
                for aggregate in more {
                    d.measures.push(Measure { aggregate, column: Some(c) });
                }
                pending.clear();
            }
        }
        // "Card payments: how many were there, and how much did they total?": the rows were
        // counted; the total is of their measure.
        let counted_only = !d.measures.is_empty() && d.measures.iter().all(|m| m.aggregate == Aggregate::Count && m.column.is_none());
        if let (true, false, None, Some(c)) = (counted_only, ranked, s.compare, d.counted.or(context.first().copied()).and_then(|r| self.main_measure(r))) {
            for aggregate in pending.iter().copied().filter(|a| !matches!(a, Aggregate::Count | Aggregate::CountDistinct)).collect::<Vec<_>>() {
                d.measures.push(Measure { aggregate, column: Some(c) });
            }
            pending.retain(|a| matches!(a, Aggregate::Count | Aggregate::CountDistinct));
        }
        if let Some((comparison, value, high)) = s.compare {
            // "orders over 100": the relation's one measure column; "took over 1 second":
            // its duration column.
            let unit = s.compare_at.and_then(|at| self.tokens.get(at + 1)).map(|t| t.text.clone());
            let duration = unit.as_deref().is_some_and(|u| time_unit(u).is_some() || matches!(u, "ms" | "millisecond" | "milliseconds"));
            let timed = duration.then(|| context.iter().find_map(|r| self.adjective_column(*r, "slowest"))).flatten();
            // "warmer than -18.5": the comparative says what is compared.
            let comparative = s.compare_at.and_then(|at| {
                // "below freezing": a temperature.
                if self.tokens[at].is_any(&["freezing", "zero"]) { Some("colder".to_string()) } else { at.checked_sub(2).map(|at| self.tokens[at].text.clone()) }
            });
            let adjective = comparative.and_then(|w| self.reachable(&context).into_iter().find_map(|r| self.adjective_column(r, &w)));
            let unit = s.compare_at.and_then(|at| self.unit_column(&self.reachable(&context), at));
            // "devices 1-10": the ids of the things named right before the numbers.
            let ids = s.compare_at.filter(|&at| at > 0).and_then(|at| {
                let noun = &self.tokens[at - 1];
                let named = (0..self.catalog.relations.len()).find(|&r| noun.text != noun.stem && self.is_relation_noun(r, noun))?;
                self.key_column(named, &context)
            });
            match timed.or(adjective).or(unit).or(ids).or_else(|| context.first().and_then(|r| self.main_measure(*r))) {
                Some(c) => {
                    self.notes.push(format!("read {value} as a limit on {}", self.column_name(c)));
                    let value = s.compare_at.map_or(value, |at| self.scaled(value, c, at));
                    match pending.first().copied().filter(|a| !matches!(a, Aggregate::Count | Aggregate::CountDistinct)) {
                        // "sites where the freezers average warmer than -18.5": on the average.
                        Some(aggregate) => {
                            d.measures.push(Measure { aggregate, column: Some(c) });
                            d.measure_compares.push((d.measures.len() - 1, comparison, value, high));
                            pending.clear();
                        }
                        None => d.filters.push(number_filter(c, comparison, value, high)),
                    }
                }
                // "pages that got at least one visit": they have rows; nothing to limit.
                None if high.is_none() && ((comparison == Comparison::GreaterOrEqual && value == 1.0) || (comparison == Comparison::Greater && value == 0.0)) => {}
                None => {
                    // "buyers per country? only countries with over 40": a limit on each group's count.
                    let grouped = !d.groups.is_empty() || !d.group_relations.is_empty();
                    match d.measures.iter().position(|m| m.aggregate == Aggregate::Count).filter(|_| grouped) {
                        Some(m) => d.measure_compares.push((m, comparison, value, high)),
                        None => return Err(Refusal(format!("ASK could not tell which column the number {value} limits"))),
                    }
                }
            }
        }
        // Columns claimed by a number ("customer 42") are not also asked for.
        d.bare_columns.retain(|c| !d.claimed_columns.contains(c));

        // "status codes with their counts", "a breakdown of …".
        // ("with their names" lists names; "with their counts" breaks down.)
        let their_measure = self.tokens.windows(2).any(|w| w[0].is("their") && (w[1].is_any(&["count", "counts", "number", "numbers", "share", "shares"]) || aggregate_word(&w[1].text).is_some()));
        let breakdown = their_measure || self.tokens.iter().any(|t| t.is_any(&["breakdown", "distribution", "split", "mix"]));
        let groups_from_bare = |d: &mut Draft, reader: &Self| {
            // "US region orders": a column named with one of its values only qualifies it.
            let qualifies = |c: &ColumnRef| d.values.iter().any(|(v, _, _)| v == c);
            // ("Which users …? id and number of searches": the grouped key, said again.)
            let grouped_key = |c: &ColumnRef| d.groups.iter().any(|g| reader.joined_keys(*g, *c));
            let text: Vec<ColumnRef> = d.bare_columns.iter().copied().filter(|c| reader.is_categorical(*c) && !qualifies(c) && !grouped_key(c)).collect();
            for c in text {
                if !is_temporal(&reader.column(c).data_type) {
                    d.groups.push(c);
                    d.bare_columns.retain(|b| *b != c);
                }
            }
        };
        if breakdown || !d.having.is_empty() || !d.measure_compares.is_empty() && d.groups.is_empty() {
            groups_from_bare(&mut d, self);
        }
        // "clients whose average purchase is above 400 euros": each of the things named
        // first, by the measure of the rows about them.
        if !d.measure_compares.is_empty() && d.groups.is_empty() && d.group_relations.is_empty() && time.buckets.is_empty() {
            let measured = d.measures.get(d.measure_compares[0].0).and_then(|m| m.column).map(|c| c.relation);
            let first_named = links.first().filter(|l| self.plural_relation_word(l)).and_then(|l| d.bare_relations.iter().copied().find(|r| l.candidates.iter().any(|c| c.target == Target::Relation(*r))));
            if let (Some(subject), Some(measured)) = (first_named, measured) {
                if subject != measured && self.key_pair(measured, subject).is_some() {
                    d.group_relations.push(subject);
                }
            }
        }
        for (m, comparison, value, high) in std::mem::take(&mut d.measure_compares) {
            let measure = d.measures[m];
            if d.groups.is_empty() && d.group_relations.is_empty() {
                // No groups: a condition on each row's value.
                if let Some(c) = measure.column {
                    d.filters.push(number_filter(c, comparison, value, high));
                }
            } else {
                d.having.push(Having { measure, comparison, value });
            }
        }

        // Bare numeric columns in an aggregate question are its measures.
        let aggregate_question = !d.measures.is_empty() || !d.groups.is_empty() || !d.group_relations.is_empty() || !time.buckets.is_empty() || !d.having.is_empty();
        let in_conditions: Vec<ColumnRef> = d.filters.iter().map(filter_column).collect();
        let measure_like = |c: &ColumnRef, reader: &Self| is_numeric(&reader.column(*c).data_type) && !is_key_name(&reader.column(*c).name) && !in_conditions.contains(c) && reader.column(*c).values.is_none();
        if aggregate_question && !d.measures.is_empty() {
            // "number of orders and revenue by region": each named measure.
            let named: Vec<ColumnRef> = d.bare_columns.iter().copied().filter(|c| measure_like(c, self) && !d.measures.iter().any(|m| m.column == Some(*c))).collect();
            for c in named {
                let aggregate = if self.is_money(c) { Aggregate::Sum } else { Aggregate::Avg };
                self.notes.push(format!("took the {} of {}", aggregate_words(aggregate), self.column_name(c)));
                d.measures.push(Measure { aggregate, column: Some(c) });
                d.bare_columns.retain(|b| *b != c);
            }
        }
        if aggregate_question && d.measures.is_empty() {
            if let Some(c) = d.bare_columns.iter().copied().find(|c| measure_like(c, self)) {
                if pending.is_empty() {
                    let aggregate = if self.is_money(c) { Aggregate::Sum } else { Aggregate::Avg };
                    self.notes.push(format!("took the {} of {}", aggregate_words(aggregate), self.column_name(c)));
                    pending.push(aggregate);
                }
                // "temperature range for each kind": the minimum and the maximum.
                for aggregate in pending.drain(..) {
                    d.measures.push(Measure { aggregate, column: Some(c) });
                }
                d.bare_columns.retain(|b| *b != c);
            }
        }
        if !aggregate_question && d.measures.is_empty() {
            // "how long do pages take to load on average": the aggregate of what was named.
            if pending.first().is_some_and(|a| *a != Aggregate::Count) {
                if let Some(c) = d.bare_columns.iter().copied().find(|c| is_numeric(&self.column(*c).data_type) && !is_key_name(&self.column(*c).name)) {
                    // "temperature stats: lowest, mean and highest": each of them.
                    for a in pending.drain(..) {
                        d.measures.push(Measure { aggregate: a, column: Some(c) });
                    }
                    d.bare_columns.retain(|b| *b != c);
                }
            }
        }
        if aggregate_question && d.measures.is_empty() && d.order_column.is_none() {
            // "average purchase value per plan": the measure of the relation asked about.
            if let Some(a) = pending.first().copied().filter(|a| *a != Aggregate::Count) {
                if let Some(c) = context.iter().find_map(|r| self.main_measure(*r)) {
                    d.measures.push(Measure { aggregate: a, column: Some(c) });
                    pending.clear();
                }
            }
        }
        // "which sensors have FRE in their label? ids and sites": labels listed after the
        // last pause name more of each group.
        if !d.groups.is_empty() {
            let labels: Vec<ColumnRef> =
                d.bare_columns.iter().copied().filter(|c| self.listed_last(links, c) && !measure_like(c, self) && !d.groups.contains(c) && !in_conditions.contains(c) && d.groups.iter().any(|g| self.labels_same_things(*g, *c))).collect();
            for c in labels {
                self.notes.push(format!("listed {} for each group", self.column_name(c)));
                d.groups.push(c);
                d.bare_columns.retain(|b| *b != c);
            }
        }
        // "which pages did they view? unique paths only": each group once, no count of it.
        d.measures.retain(|m| !(m.aggregate == Aggregate::CountDistinct && m.column.is_some_and(|c| d.groups.contains(&c))));
        // "which user ids made at least 3 purchases": every group that qualifies, unranked.
        let only_qualifies = !d.having.is_empty() && s.rank.is_none() && time.rank.is_none() && !d.ranked_bucket;
        // "which devices reported a battery under 10%": the devices, listed once.
        // "list every country where we have …": the countries, no count asked.
        // ("For the Lyon site, list each device's name, kind and model": after a pause too.)
        let lists = self.tokens.iter().enumerate().any(|(i, t)| (i == 0 || t.pause_before) && t.is_any(&["list", "name", "enumerate"])) && !d.groups.is_empty();
        // "who searched for something in the last 30 minutes? their emails": the people, once.
        let who_did = self.tokens.first().is_some_and(|t| t.is("who")) && (!d.groups.is_empty() || !d.group_relations.is_empty());
        let listing = (s.which || lists || who_did)
            && d.measures.is_empty()
            && d.having.is_empty()
            && d.measure_compares.is_empty()
            && pending.is_empty()
            && d.order_column.is_none()
            && s.rank.is_none()
            && time.rank.is_none()
            && !d.ranked_bucket
            && !time.asks_time;
        // "what kinds of sensors do we have, and how many of each": every kind, unranked.
        let which_plural = self
            .tokens
            .iter()
            .position(|t| t.is_any(&["which", "what"]))
            .and_then(|w| links.iter().find(|l| l.start > w))
            .is_some_and(|l| self.tokens[l.end - 1].text != self.tokens[l.end - 1].stem);
        let every_group = which_plural && s.rank.is_none() && time.rank.is_none() && !d.ranked_bucket;
        if (d.ranks_groups() || (d.group_relations.len() == 1 && s.which)) && !only_qualifies && !listing && !every_group {
            if d.measures.is_empty() {
                let ranks_by_key = pending.is_empty() && d.order_column.is_some_and(|(c, _)| is_key_name(&self.column(c).name));
                if let Some((c, _)) = if ranks_by_key { d.order_column.take() } else { None } {
                    // "top pages by views": a key ranks by how many rows (of its own
                    // relation) or how many different ones (of another) there are.
                    let own = self.keyed_relation(c).is_none_or(|r| r == c.relation);
                    let measure = if own { Measure { aggregate: Aggregate::Count, column: None } } else { Measure { aggregate: Aggregate::CountDistinct, column: Some(c) } };
                    self.notes.push(if own { "ranked by the number of rows".to_string() } else { format!("ranked by the number of different {}", self.column_name(c)) });
                    d.measures.push(measure);
                } else if let Some((c, _)) = d.order_column.take() {
                    // "the lowest temperature" ranks by the minimum, "the lowest takings" by the total.
                    let extreme = s.rank_word.as_deref().and_then(extreme_aggregate).filter(|_| !self.is_money(c));
                    let aggregate = pending.first().copied().or(extreme).unwrap_or(if self.is_money(c) { Aggregate::Sum } else { Aggregate::Avg });
                    if pending.is_empty() {
                        self.notes.push(format!("ranked by the {} of {}", aggregate_words(aggregate), self.column_name(c)));
                    }
                    d.measures.push(Measure { aggregate, column: Some(c) });
                } else if let Some(c) = time.rank_word.as_deref().or(s.rank_word.as_deref()).and_then(|w| self.reachable(&context).into_iter().find_map(|r| self.adjective_column(r, w))) {
                    // "the 2 driest sites", "which page is slowest": by the average humidity, latency.
                    self.notes.push(format!("ranked by the average of {}", self.column_name(c)));
                    d.measures.push(Measure { aggregate: Aggregate::Avg, column: Some(c) });
                } else {
                    d.measures.push(Measure { aggregate: Aggregate::Count, column: None });
                }
            }
            // "… place the smallest orders on average": the average of what was counted.
            if let ([Measure { aggregate: Aggregate::Count, column: None }], [a], Some(r)) = (&d.measures[..], &pending[..], d.counted) {
                if let (false, Some(m)) = (matches!(a, Aggregate::Count | Aggregate::CountDistinct), self.main_measure(r)) {
                    d.measures[0] = Measure { aggregate: *a, column: Some(m) };
                    pending.clear();
                }
            }
            plan.order.push((OrderKey::Measure(0), s.direction.or(s.rank).unwrap_or(true)));
            plan.limit = if time.rank_all { time.limit } else { Some(time.limit.unwrap_or(1)) };
        } else if let (Some(a), false) = (pending.first(), aggregate_question) {
            // "the highest" with no column: the measure of the relation asked about;
            // "the coldest it got": what the adjective measures.
            let adjective = s.pending_word.as_deref().and_then(|w| self.reachable(&context).into_iter().find_map(|r| self.adjective_column(r, w)));
            if let Some(c) = adjective.or_else(|| context.first().and_then(|r| self.main_measure(*r))) {
                d.measures.push(Measure { aggregate: *a, column: Some(c) });
            }
        }

        // "who …": the people the question is about, by name; "… id(s)" asks for the key.
        let asks_who = self.tokens.iter().any(|t| !t.quoted && t.is_any(&["who", "whom"]));
        let says_id = self.tokens.iter().any(|t| !t.quoted && t.is_any(&["id", "ids"]));

        // "customers who placed more than 5 orders": each of the things named first that
        // qualifies, counted in the rows about them.
        if !d.having.is_empty() && d.groups.is_empty() && d.group_relations.is_empty() && time.buckets.is_empty() {
            if let Some(counted) = d.counted {
                if let Some(&subject) = named.iter().find(|&&r| r != counted && self.key_pair(counted, r).is_some()) {
                    d.group_relations.push(subject);
                }
            }
        }
        // "pages with at least 100 views", "pages that crashed …, and how often each": each
        // page, by the text column its plural names.
        if (!d.having.is_empty() || s.grouping) && d.groups.is_empty() && d.group_relations.is_empty() && time.buckets.is_empty() {
            if let Some(first) = links.first().filter(|l| self.plural_relation_word(l)) {
                let text: Vec<&Candidate> = first.candidates.iter().filter(|c| matches!(c.target, Target::Column(..)) && !self.candidate_is(c, is_numeric) && !self.candidate_is(c, is_temporal)).collect();
                if let Some(c) = self.prefer_text(text).first() {
                    d.groups.push(as_column(&c.target));
                }
            } else if let Some(c) = d.plural_subject.filter(|c| s.grouping && d.bare_columns.contains(c)) {
                // "Payment methods used by …, with the number of payments for each": each
                // of the things the question opened with.
                d.groups.push(c);
                d.bare_columns.retain(|b| *b != c);
            }
        }
        // The base relation: what is counted or measured, else what is named.
        let asks_when = self.tokens.first().is_some_and(|t| t.is("when"));
        // "Osaka, outdoor units only: the five newest measurements": the rows the time
        // ranking names, not the things named first.
        let ranked_rows = time.rank_at.filter(|_| time.by_time).and_then(|p| {
            links.iter().filter(|l| (p + 1..=p + 2).contains(&l.start)).find_map(|l| {
                l.candidates.iter().find_map(|c| match c.target {
                    Target::Relation(r) if d.bare_relations.contains(&r) => Some(r),
                    _ => None,
                })
            })
        });
        let base = d
            .counted
            .filter(|_| !d.having.is_empty())
            .or_else(|| d.measures.iter().find_map(|m| m.column.map(|c| c.relation)))
            .or(d.counted)
            // "clicks per plan": count(*) counts the rows the value is stored in.
            .or_else(|| {
                let counts_rows = d.measures.iter().any(|m| m.column.is_none()) || (d.measures.is_empty() && (!d.groups.is_empty() || !d.group_relations.is_empty()));
                counts_rows.then(|| d.qualified.or_else(|| d.values.first().map(|(c, _, _)| c.relation))).flatten()
            })
            .or(ranked_rows)
            .or_else(|| named.first().copied())
            .or_else(|| d.bare_relations.first().copied())
            .or_else(|| d.distinct_relations.first().copied())
            .or_else(|| d.groups.first().map(|c| c.relation))
            .or_else(|| d.bare_columns.first().map(|c| c.relation))
            .or_else(|| d.values.first().map(|(c, _, _)| c.relation))
            // "order number 1309": the relation of the column the number was read in.
            .or_else(|| d.claimed_columns.first().map(|c| c.relation))
            .or_else(|| context.first().copied())
            .ok_or_else(|| Refusal("ASK could not tell which table the question is about".into()))?;
        plan.base = base;
        add_context(&mut context, base);

        // Counting things that have no time, in a time range: the things that appear in
        // rows that do ("how many devices sent data in the last hour").
        let counts_key = |m: &Measure, reader: &Self| {
            m.aggregate == Aggregate::CountDistinct && m.column.is_some_and(|c| c.relation == base && is_key_name(&reader.column(c).name))
        };
        let counts_base = d.measures.iter().any(|m| m.column.is_none() || counts_key(m, self)) || d.distinct_relations.contains(&base);
        let activity = match d.appears_in {
            Some(t) => self.key_column(base, &[t]).filter(|k| k.relation == t).map(|k| (t, k)),
            None => self.timed_relation_with_key(base, &context).filter(|(t, _)| !self.has_time(base) || context.contains(t)),
        };
        if (time.has_range() || d.appears_in.is_some()) && counts_base && activity.is_some() {
            if let Some(verb) = self.tokens.iter().find(|t| t.is_any(CREATION_VERBS)).filter(|_| time.has_range() && !self.has_time(base)) {
                // "customers registered in March": their own time, which is not stored.
                return Err(Refusal(format!(
                    "ASK could not answer when {} were {}: it has no time column",
                    self.catalog.relations[base].name, verb.raw
                )));
            }
            // Counting things in a time range counts the things that appear in rows of
            // that range ("how many devices sent data in the last hour", "users who
            // visited in the last 2 days"), not things created in it.
            // "device 17: number of data points in the past 2 hours": the rows themselves.
            // "readings sent by TH-200 hardware …: count": the readings named outright.
            let named_rows = |t: usize| links.iter().any(|l| self.plural_relation_word(l) && l.candidates.iter().any(|c| c.target == Target::Relation(t) && c.evidence == Evidence::Name));
            let rows_asked = d.appears_in.is_none()
                && (self.tokens.windows(2).any(|w| w[1].is_any(GENERIC_ROWS) || (w[0].is("many") && w[1].is("times")) || (w[0].is("data") && w[1].is_any(&["points", "point"]))) || activity.is_some_and(|(t, _)| named_rows(t)));
            if let (Some((t, _)), true) = (activity, rows_asked) {
                self.notes.push(format!("counted the rows of {}", self.catalog.relations[t].name));
                let reader: &Self = self;
                if let Some(i) = d.measures.iter().position(|m| m.column.is_none() || counts_key(m, reader)) {
                    d.measures[i] = Measure { aggregate: Aggregate::Count, column: None };
                }
                d.distinct_relations.retain(|r| *r != base);
                plan.base = t;
                add_context(&mut context, t);
            } else if let Some((t, key)) = activity {
                self.notes.push(format!("counted the distinct {} in {}", self.column(key).name, self.catalog.relations[t].name));
                // Replaced where it stands, so ORDER BY keeps pointing at its measure.
                let distinct = Measure { aggregate: Aggregate::CountDistinct, column: Some(key) };
                let reader: &Self = self;
                match d.measures.iter().position(|m| m.column.is_none() || counts_key(m, reader)) {
                    Some(i) => d.measures[i] = distinct,
                    None => d.measures.push(distinct),
                }
                d.distinct_relations.retain(|r| *r != base);
                plan.base = t;
                add_context(&mut context, t);
            }
        }
        if let (true, false, Some(verb)) = (asks_when, self.has_time(plan.base), self.tokens.iter().find(|t| t.is_any(CREATION_VERBS))) {
            // "when were the Osaka devices installed": their own time, which is not stored.
            return Err(Refusal(format!("ASK could not answer when {} were {}: it has no time column", self.catalog.relations[plan.base].name, verb.raw)));
        }
        if asks_when && !self.has_time(plan.base) {
            // "when did customer 7 last place an order": the time of the rows about it.
            if let Some((t, _)) = self.timed_relation_with_key(plan.base, &context) {
                plan.base = t;
                add_context(&mut context, t);
            }
        }
        if (time.has_range() || !time.buckets.is_empty()) && !self.has_time(plan.base) && d.measures.iter().all(|m| m.column.is_none_or(|c| c.relation != plan.base)) {
            // "everything device 31 reported over the last 6 hours": the timed rows about it.
            if let Some((t, _)) = self.timed_relation_with_key(plan.base, &context) {
                plan.base = t;
                add_context(&mut context, t);
            }
        }
        let base = plan.base;
        if asks_when && !self.has_time(base) {
            return Err(Refusal(format!("ASK could not answer \"when\": {} has no time column", self.catalog.relations[base].name)));
        }
        for r in std::mem::take(&mut d.distinct_relations) {
            if let Some(key) = self.key_column(r, &with_first(&context, base)) {
                d.measures.push(Measure { aggregate: Aggregate::CountDistinct, column: Some(key) });
            }
        }
        // "which customers …", "who …", "… names please": things by their names, not their ids.
        let by_label = |reader: &mut Self, d: &mut Draft, r: usize| -> Option<ColumnRef> {
            // "which free accounts …? emails": a text column of theirs named outright that
            // is not a category (no stored values shown) tells them apart as well.
            // (Already a group when "emails" came before the grouping was read.)
            let named_text = d.bare_columns.iter().chain(&d.groups).copied().find(|c| {
                let column = reader.column(*c);
                c.relation == r && column.values.is_none() && !is_key_name(&column.name) && !is_numeric(&column.data_type) && !is_temporal(&column.data_type)
            });
            let label = reader
                .label_column(r)
                .filter(|l| !says_id && (d.bare_columns.contains(l) || (reader.holds_people(r) && (s.which || asks_who || ranked))))
                .or(named_text.filter(|_| !says_id))?;
            reader.notes.push(format!("named the {} by {}", reader.catalog.relations[r].name, reader.column_name(label)));
            d.bare_columns.retain(|b| *b != label);
            Some(label)
        };
        for g in 0..d.groups.len() {
            let group = d.groups[g];
            if let Some(label) = self.keyed_relation(group).and_then(|r| by_label(self, &mut d, r)) {
                d.groups[g] = label;
                if d.ranked_group == Some(group) {
                    d.ranked_group = Some(label);
                }
            }
        }
        for r in std::mem::take(&mut d.group_relations) {
            // "which sensor (by name)", "who …? email", "which sensors …? device ids": already
            // grouped by what tells each apart.
            let tells_apart = |c: &ColumnRef| {
                let column = self.column(*c);
                c.relation == r && (is_key_name(&column.name) || column.values.is_none() && !is_numeric(&column.data_type) && !is_temporal(&column.data_type))
            };
            if self.label_column(r).is_some_and(|l| d.groups.contains(&l)) || d.groups.iter().any(tells_apart) {
                continue;
            }
            let label = by_label(self, &mut d, r);
            if let Some(key) = label.or_else(|| self.key_column(r, &with_first(&context, base))) {
                d.groups.push(key);
                if s.which && d.ranked_group.is_none() {
                    d.ranked_group = Some(key);
                }
            }
        }
        // "average battery per Hamburg device, by name": the name tells the devices apart.
        let labels: Vec<ColumnRef> = d.groups.iter().filter_map(|g| self.keyed_relation(*g).and_then(|r| self.label_column(r))).filter(|l| d.groups.contains(l)).collect();
        for label in labels {
            let named_by_it = |g: &ColumnRef| *g != label && self.keyed_relation(*g).and_then(|r| self.label_column(r)) == Some(label);
            if d.ranked_group.is_some_and(|g| named_by_it(&g)) {
                d.ranked_group = Some(label);
            }
            d.groups.retain(|g| !named_by_it(g));
        }
        // "Chrome vs Safari", "compare 200 and 404 responses": one row for each.
        // "returned or cancelled - how many of each": each value named, a group.
        let of_each = self.tokens.windows(2).any(|w| w[0].is("of") && w[1].is("each") && self.tokens.last().is_some_and(|t| t.is("each")));
        let versus = of_each
            || self.tokens.iter().any(|t| t.is_any(&["vs", "versus", "compare", "comparing"]))
            || self.tokens.windows(2).any(|w| w[0].is("compared") && w[1].is_any(&["to", "with"]));
        if versus {
            let mut by_column: Vec<(ColumnRef, usize)> = Vec::new();
            for (c, _, _) in d.values.iter().filter(|(_, v, negated)| !v.prefix && !negated) {
                match by_column.iter_mut().find(|(x, _)| x == c) {
                    Some((_, n)) => *n += 1,
                    None => by_column.push((*c, 1)),
                }
            }
            for (c, _) in by_column.into_iter().filter(|(_, n)| *n > 1) {
                let c = self.same_column_in(c, base);
                if !d.groups.contains(&c) {
                    d.groups.push(c);
                }
            }
        }
        // "revenue by region, …, highest first": the groups' total of the column ranked by.
        if let (true, true, Some((c, _))) = (!d.groups.is_empty() || !time.buckets.is_empty(), d.measures.is_empty() && !listing, d.order_column) {
            if is_numeric(&self.column(c).data_type) && !is_key_name(&self.column(c).name) {
                d.measures.push(Measure { aggregate: if self.is_money(c) { Aggregate::Sum } else { Aggregate::Avg }, column: Some(c) });
            }
        }
        if (!d.groups.is_empty() || !time.buckets.is_empty()) && d.measures.is_empty() && !listing {
            d.measures.push(Measure { aggregate: Aggregate::Count, column: None });
        }
        // HAVING measures are shown too; a count beside another measure only qualifies
        // ("average temperature per model, only models with more than 600 readings").
        let measured = !d.measures.is_empty();
        for h in &d.having {
            let qualifier = measured && matches!(h.measure.aggregate, Aggregate::Count) && h.measure.column.is_none();
            if !d.measures.contains(&h.measure) && !qualifier {
                d.measures.push(h.measure);
            }
        }

        // Values of one column together are alternatives: IN (…).
        let mut values: Vec<(ColumnRef, Vec<String>, bool)> = Vec::new();
        for (c, v, negated) in std::mem::take(&mut d.values) {
            let c = self.same_column_in(c, base);
            if v.prefix {
                plan.filters.push(Filter::Prefix { column: c, prefix: v.text, negated });
                continue;
            }
            match values.iter_mut().find(|(col, _, n)| *col == c && *n == negated) {
                Some((_, vs, _)) if !vs.contains(&v.text) => vs.push(v.text),
                Some(_) => {}
                None => values.push((c, vec![v.text], negated)),
            }
        }
        for (column, values, negated) in values {
            plan.filters.push(Filter::Values { column, values, negated });
        }
        // "customer 7" said of the orders: their own customer_id, no join needed.
        for f in &mut d.filters {
            if let Filter::Number { column, .. } = f {
                if is_key_name(&self.column(*column).name) {
                    *column = self.same_column_in(*column, base);
                }
            }
        }
        plan.filters.append(&mut d.filters);

        // A time column of a relation the question cannot reach was a stray word ("created").
        d.bare_columns.retain(|c| !is_temporal(&self.column(*c).data_type) || c.relation == base || self.key_pair(base, c.relation).is_some());
        let mut order_column = d.order_column;
        let mut asked_time = None;
        let mut listed_time = None;
        if time.has_range() || !time.buckets.is_empty() || time.by_time || time.asks_time || time.lists_time {
            // "pro users who bought something in the last 7 days": the time of the purchase.
            let event_time = time.range_at.and_then(|at| self.event_before(links, at, base, &context));
            let ts = self.time_column(event_time.unwrap_or(base), &d.bare_columns, &context)?;
            // "…: email addresses and signup dates": the time, listed by name too.
            if time.lists_time || self.listed_last(links, &ts) {
                listed_time = Some(ts);
            }
            if time.asks_time {
                asked_time = Some(ts);
                if !d.groups.is_empty() || !d.group_relations.is_empty() || !plan.group_by.is_empty() {
                    // "when did each site last send a reading": the latest time of each.
                    let aggregate = if time.rank == Some(false) { Aggregate::Min } else { Aggregate::Max };
                    if let Some(i) = d.measures.iter().position(|m| m.column.is_none() && m.aggregate == Aggregate::Count) {
                        d.measures.remove(i);
                    }
                    d.measures.push(Measure { aggregate, column: Some(ts) });
                    order_column = None;
                }
            }
            d.bare_columns.retain(|c| *c != ts);
            if let Some((amount, unit)) = time.recent {
                plan.filters.push(Filter::Recent { column: ts, amount, unit });
            }
            if let Some((near, far, unit)) = time.ago {
                plan.filters.push(Filter::Ago { column: ts, near, far, unit });
            }
            if let Some((amount, unit)) = time.before_ago {
                plan.filters.push(Filter::Before { column: ts, amount, unit });
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
        // Two groups named by the same label ("which users …? emails") are one group.
        for c in &d.groups {
            if !plan.group_by.contains(&GroupKey::Column(*c)) {
                plan.group_by.push(GroupKey::Column(*c));
            }
        }
        plan.measures = d.measures;
        plan.having = d.having;
        if !plan.is_aggregate() {
            // A row query: the columns asked for, newest or ranked as asked.
            // Columns named only to qualify a value ("the EU region") are not asked for.
            // A column named only in a condition ("humidity below 20") is shown only
            // when other columns are asked for too ("path and load time of …").
            let in_values: Vec<ColumnRef> =
                plan.filters.iter().filter(|f| matches!(f, Filter::Values { .. } | Filter::Prefix { .. })).map(filter_column).collect();
            let in_conditions: Vec<ColumnRef> = plan.filters.iter().map(filter_column).collect();
            // "TH-100 units in Lyon and Hamburg: names and sites": a list after the last
            // pause asks for the columns, though values of one were named before.
            let listed = |c: &ColumnRef| self.listed_last(links, c);
            // "the names of … sorted by name", "emails of pro users whose address contains
            // tanaka": the column the question opens with ("X of …") is asked for, though it
            // also orders or filters the rows.
            let opens_with = |c: &ColumnRef| {
                links.first().is_some_and(|l| {
                    l.start <= 3 && (l.start + 1..=l.end).any(|j| self.tokens.get(j).is_some_and(|t| t.is("of"))) && l.candidates.iter().any(|k| k.target == Target::Column(c.relation, c.column) && k.evidence >= Evidence::Comment)
                })
            };
            let mut asked: Vec<ColumnRef> = Vec::new();
            for c in d.bare_columns.iter().copied() {
                if (Some(c) != order_column.map(|(o, _)| o) || opens_with(&c) || listed(&c)) && (!in_values.contains(&c) || listed(&c)) && !asked.contains(&c) {
                    asked.push(c);
                }
            }
            // "… - just their emails", "…: names only": the listed columns and no others.
            let last_pause = self.tokens.iter().rposition(|t| t.pause_before).unwrap_or(usize::MAX);
            let only_listed = self.tokens.iter().enumerate().any(|(i, t)| i >= last_pause && t.is_any(&["just", "only"]));
            if only_listed && asked.iter().any(listed) {
                asked.retain(listed);
            }
            // "the 3 warmest readings …: device name and temperature": ranked by, and listed.
            if let Some((o, _)) = order_column.filter(|(o, _)| listed(o) && !asked.contains(o)) {
                asked.push(o);
            }
            // ("emails of pro users whose address contains tanaka": asked, and a condition.)
            if asked.iter().all(|c| in_conditions.contains(c) && !opens_with(c)) {
                asked.clear();
            }
            // "…, full row": every column.
            if self.asks_whole_row() {
                asked.clear();
            }
            // "…warmer than -16.5 °C? sensor name, reading and timestamp": the row's own noun,
            // listed, is the value it was compared on.
            let last_pause = self.tokens.iter().rposition(|t| t.pause_before).unwrap_or(usize::MAX);
            let row_listed = links.iter().any(|l| l.start >= last_pause && l.candidates.iter().any(|c| c.target == Target::Relation(base) && c.evidence == Evidence::Name));
            let compared = plan.filters.iter().find_map(|f| match f {
                Filter::Number { column, .. } if column.relation == base && !is_key_name(&self.column(*column).name) => Some(*column),
                _ => None,
            });
            if let (true, Some(c), false) = (row_listed, compared, asked.is_empty()) {
                if !asked.contains(&c) {
                    asked.push(c);
                }
            }
            // "clients with Garcia in their name, and the country they live in": the things
            // named first, by their label, and what is added about them.
            let added = self.tokens.iter().enumerate().any(|(i, t)| (t.is("and") && t.pause_before) || (t.is("with") && t.pause_before && self.tokens.get(i + 1).is_some_and(|n| n.is("their"))));
            let things = links.first().filter(|l| l.start <= 1 && self.plural_relation_word(l)).and_then(|l| {
                l.candidates.iter().find_map(|c| match c.target {
                    // (Without a label, the text column the rows were matched on: "accounts
                    // whose email contains rossi, with their plan …".)
                    Target::Relation(r) if c.evidence >= Evidence::Comment && r == base => self.label_column(r).or_else(|| {
                        in_conditions.iter().copied().find(|k| k.relation == r && self.column(*k).values.is_none() && !is_numeric(&self.column(*k).data_type) && !is_temporal(&self.column(*k).data_type))
                    }),
                    _ => None,
                })
            });
            if let (true, Some(label)) = (added, things) {
                if !asked.is_empty() && !asked.contains(&label) && asked.iter().all(|c| c.relation == label.relation) {
                    asked.insert(0, label);
                }
            }
            // "when did …", "date of the earliest …": the time is the answer.
            plan.columns = asked_time.map_or(asked, |ts| vec![ts]);
            // "our 3 oldest accounts: email and when they joined": the time beside them.
            if let Some(ts) = listed_time.filter(|ts| (!plan.columns.is_empty() || self.amount_listed) && !plan.columns.contains(ts)) {
                plan.columns.push(ts);
            }
            // "The most recent payment: when, how much, …": the row's amount beside them.
            if let Some(amount) = self.main_measure(base).filter(|a| self.amount_listed && !plan.columns.contains(a)) {
                plan.columns.push(amount);
            }
            if !plan.columns.is_empty() && plan.columns.iter().all(|c| c.relation != base) {
                plan.base = plan.columns[0].relation;
            }
            if self.tokens.first().is_some_and(|t| t.is("who")) && plan.columns.is_empty() {
                // "who placed the 5 biggest orders": the name of whoever did.
                if let Some(name) = self.reachable(&with_first(&context, plan.base)).into_iter().find_map(|r| {
                    self.catalog.relations[r].columns.iter().position(|c| c.name == "name").map(|i| ColumnRef { relation: r, column: i })
                }) {
                    self.notes.push(format!("answered \"who\" with {}", self.column_name(name)));
                    plan.columns = vec![name];
                }
            }
            if order_column.is_none() {
                let measured = time.rank_word.as_deref().or(s.rank_word.as_deref()).and_then(|w| self.adjective_column(plan.base, w));
                if let (Some(direction), Some(c)) = (s.rank, measured.or_else(|| self.main_measure(plan.base))) {
                    order_column = Some((c, direction));
                }
            }
            if time.by_time && time.limit.is_none() && !time.rank_all {
                // "the latest reading": one row; "the latest readings": all, newest first.
                let after = time.rank_at.unwrap_or(0);
                let plural_after = self.tokens.iter().enumerate().skip(after + 1).any(|(_, t)| t.text != t.stem && !FILLER.contains(&t.text.as_str()) && !UNITS.contains(&t.text.as_str()));
                if !plural_after {
                    plan.limit = Some(1);
                }
            }
            if let Some((c, direction)) = order_column {
                plan.order.push((OrderKey::Column(c), s.direction.unwrap_or(direction)));
            }
            // "device ids that hit more than 33 degrees": each device once — unless the rows
            // are ordered by something not shown (DISTINCT could not order by it).
            let ordered_by_shown = plan.order.iter().all(|(k, _)| matches!(k, OrderKey::Column(c) if plan.columns.contains(c)));
            // "names of devices whose battery fell below 10%": columns of the things the
            // rows are about, each thing once.
            let about = |c: &ColumnRef| self.is_foreign_key(*c) || (c.relation != plan.base && self.key_pair(plan.base, c.relation).is_some_and(|(_, theirs)| self.keyed_relation(theirs) == Some(c.relation)));
            // "list the countries": each stored category once.
            let category = |c: &ColumnRef| self.column(*c).values.is_some() && !is_numeric(&self.column(*c).data_type);
            plan.distinct = !plan.columns.is_empty() && (plan.columns.iter().all(about) || plan.columns.iter().all(category)) && ordered_by_shown;
            // "names of the devices at Austin, alphabetical": by the first text column shown.
            let a_to_z = self.tokens.windows(3).any(|w| w[0].is("a") && w[1].is("to") && w[2].is("z"));
            if plan.order.is_empty() && (a_to_z || self.tokens.iter().any(|t| t.is_any(&["alphabetical", "alphabetically"]))) {
                let text = plan.columns.iter().copied().find(|c| !is_numeric(&self.column(*c).data_type) && !is_temporal(&self.column(*c).data_type));
                if let Some(c) = text.or_else(|| self.label_column(plan.base)) {
                    plan.order.push((OrderKey::Column(c), false));
                }
            }
            plan.limit = time.limit.or(plan.limit);
        } else if plan.order.is_empty() {
            if let Some((c, direction)) = order_column {
                if let Some(i) = plan.measures.iter().position(|m| m.column == Some(c)) {
                    plan.order.push((OrderKey::Measure(i), direction));
                }
            }
            if top_n_or_rank(&time, &s) && !plan.measures.is_empty() && plan.order.is_empty() && !plan.group_by.is_empty() {
                plan.order.push((OrderKey::Measure(0), s.direction.or(s.rank).or(time.rank).unwrap_or(true)));
                // "who has spent the most …": the one on top.
                if s.rank.is_some() && time.limit.is_none() && !time.rank_all {
                    plan.limit = Some(1);
                }
            }
            if plan.order.is_empty() {
                // Deterministic output: by the groups, buckets first.
                for i in 0..plan.group_by.len() {
                    plan.order.push((OrderKey::Group(i), false));
                }
            }
            plan.limit = plan.limit.or(time.limit);
        }
        self.rewrite(links, &mut plan, &time, &s);
        self.join(&mut plan)?;
        self.count_each_once(&mut plan, d.counted);
        plan.drop_repeated_measures();
        Ok(plan)
    }

    /// Whether `label` describes the things `group` groups: a column of the same relation,
    /// or of the relation a grouped key refers to (`readings.device_id` → `devices.site`).
    /// The key the group joins by is no label of it ("id and number of searches").
    fn labels_same_things(&self, group: ColumnRef, label: ColumnRef) -> bool {
        group.relation == label.relation || (is_key_name(&self.column(group).name) && self.key_pair(group.relation, label.relation).is_some() && !self.joined_keys(group, label))
    }

    /// "Where are the freezers coldest on average? the site and its average temperature":
    /// the place listed after the question, ranked by the measure the superlative said.
    fn where_is_it_most(&self, links: &[Link], d: &mut Draft, s: &mut Walk) {
        if !self.tokens.first().is_some_and(|t| t.is("where")) || !d.groups.is_empty() || !d.group_relations.is_empty() || d.measures.is_empty() {
            return;
        }
        let Some(direction) = self.tokens.iter().find_map(|t| superlative(&t.text).filter(|_| !t.is_any(&["most", "least", "more", "less"]))) else { return };
        let place = d.bare_columns.iter().copied().find(|c| self.listed_last(links, c) && self.is_categorical(*c));
        if let Some(c) = place {
            d.bare_columns.retain(|b| *b != c);
            d.groups.push(c);
            d.ranked_group = Some(c);
            s.rank = Some(direction);
        }
    }

    /// Whether two columns are the two sides of the key joining their relations.
    fn joined_keys(&self, a: ColumnRef, b: ColumnRef) -> bool {
        self.key_pair(a.relation, b.relation).is_some_and(|(x, y)| (x == a && y == b) || (x == b && y == a))
    }

    /// Whether the column is named after the question's last pause ("…: names and sites")
    /// or in parentheses ("which devices (name and site) …"), not as what the rows are
    /// sorted by (", sorted by name").
    fn listed_last(&self, links: &[Link], c: &ColumnRef) -> bool {
        let last_pause = self.tokens.iter().rposition(|t| t.pause_before).unwrap_or(usize::MAX);
        let sorted_by = |l: &Link| l.start > 0 && self.tokens[l.start - 1].is("by");
        // (Values in parentheses — "(pro or enterprise)" — say which rows, not what to show.)
        let names_values = |l: &Link| l.candidates.iter().any(|k| matches!(k.target, Target::Value(..)));
        let listed = |l: &Link| l.start >= last_pause || (self.in_parentheses_at(l.start) && !names_values(l));
        links.iter().any(|l| listed(l) && !sorted_by(l) && l.candidates.iter().any(|k| k.target == Target::Column(c.relation, c.column) && k.evidence >= Evidence::Comment))
    }


    /// The timed relation of a stored value said right before the time range ("bought
    /// something in the last 7 days", "with a purchase in …": the purchase's time), when
    /// it is not the base's.
    fn event_before(&self, links: &[Link], at: usize, base: usize, context: &[usize]) -> Option<usize> {
        let link = links.iter().filter(|l| l.end <= at).max_by_key(|l| l.end)?;
        let between_filler = self.tokens[link.end..at].iter().all(|t| FILLER.contains(&t.text.as_str()) || t.is_any(&["something", "anything"]));
        // "events by users who joined in the last 30 days": the users' own time.
        let created = self.tokens[link.end..at].iter().any(|t| t.is_any(CREATION_VERBS));
        if created && between_filler {
            return link.candidates.iter().find_map(|c| match c.target {
                Target::Relation(r) if r != base && self.has_time(r) && context.contains(&r) => Some(r),
                _ => None,
            });
        }
        let r = link.candidates.iter().find_map(|c| match c.target {
            Target::Value(r, _, _) if r != base && self.has_time(r) && context.contains(&r) => Some(r),
            _ => None,
        })?;
        (between_filler && !self.tokens[link.start].is_any(CREATION_VERBS)).then_some(r)
    }

    /// "customers who paid by card": a join to the rows about the base repeats each base
    /// row, so its rows are counted by their distinct key.
    fn count_each_once(&mut self, plan: &mut QueryPlan, counted: Option<usize>) {
        let fans_out = plan.joins.iter().any(|j| self.keyed_relation(j.left) == Some(j.left.relation));
        let own_key = self.key_column(plan.base, &[]).filter(|k| k.relation == plan.base && self.keyed_relation(*k) == Some(plan.base));
        // "page views per country from pro users": grouped by the joined rows' column, the
        // joined rows are what is counted.
        let grouped_elsewhere = plan.group_by.iter().any(|g| matches!(g, GroupKey::Column(c) | GroupKey::Bucket(c, _) if c.relation != plan.base));
        if fans_out && !plan.is_aggregate() && !plan.columns.is_empty() && !plan.distinct {
            // "names of devices whose battery fell below 10%": each device once.
            let own = |c: &ColumnRef| c.relation == plan.base;
            let ordered_by_shown = plan.order.iter().all(|(k, _)| matches!(k, OrderKey::Column(c) if plan.columns.contains(c)));
            plan.distinct = plan.columns.iter().all(own) && ordered_by_shown;
        }
        // "low-battery readings per kind of sensor": the readings are what is counted.
        let counts_base = counted == Some(plan.base);
        let (true, false, true, Some(key)) = (fans_out, grouped_elsewhere, counts_base, own_key) else { return };
        let each_once = Measure { aggregate: Aggregate::CountDistinct, column: Some(key) };
        let mut replaced = false;
        for m in plan.measures.iter_mut().chain(plan.having.iter_mut().map(|h| &mut h.measure)) {
            if m.column.is_none() {
                *m = each_once;
                replaced = true;
            }
        }
        if replaced {
            self.notes.push(format!("counted each of {} once", self.catalog.relations[plan.base].name));
        }
    }
}

/// Words for "rows" that name no relation: "the number of records for device 17".
const GENERIC_ROWS: &[&str] = &["records", "rows", "entries", "datapoints"];

