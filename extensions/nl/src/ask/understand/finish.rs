//! Finishing a reading: what the walk left (pending aggregates, comparisons, bare
//! columns) becomes measures, filters and groups; the base relation is chosen, time ranges
//! and buckets land on its time column, row questions get their columns and order, and
//! every relation used is joined to the base.

use super::*;

impl Reader<'_> {
    pub(super) fn finish(&mut self, links: &[Link], mut d: Draft, s: Walk, named: Vec<usize>, mut context: Vec<usize>, time: Time) -> Result<QueryPlan, Refusal> {
        tracing::debug!(draft = ?d, walk = ?s, "ASK draft");
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
                let named = (0..self.catalog.relations.len()).find(|&r| noun.text != noun.stem && crate::ask::words::identifier_words(&self.catalog.relations[r].name).last() == Some(&noun.stem))?;
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
            // "which sensor (by name)", "who …? email": already grouped by what tells each apart.
            let tells_apart = |c: &ColumnRef| {
                let column = self.column(*c);
                c.relation == r && column.values.is_none() && !is_key_name(&column.name) && !is_numeric(&column.data_type) && !is_temporal(&column.data_type)
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
            // "when did …", "date of the earliest …": the time is the answer.
            plan.columns = asked_time.map_or(asked, |ts| vec![ts]);
            // "our 3 oldest accounts: email and when they joined": the time beside them.
            if let Some(ts) = listed_time.filter(|ts| !plan.columns.is_empty() && !plan.columns.contains(ts)) {
                plan.columns.push(ts);
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
            }
            if plan.order.is_empty() {
                // Deterministic output: by the groups, buckets first.
                for i in 0..plan.group_by.len() {
                    plan.order.push((OrderKey::Group(i), false));
                }
            }
            plan.limit = plan.limit.or(time.limit);
        }
        self.single_row_ranked(&mut plan, &s);
        self.rank_rows_named_after_superlative(links, &mut plan, &time, &s);
        self.rank_things_by_their_rows(links, &mut plan, &time);
        self.rank_by_polarity(&mut plan);
        self.count_what_cannot_be_summed(&mut plan);
        drop_repeated_filters(&mut plan);
        self.join(&mut plan)?;
        self.count_each_once(&mut plan, d.counted);
        plan.drop_repeated_measures();
        Ok(plan)
    }

    /// "the warmest reading ever recorded, with the name of the device", "names and amounts
    /// of the 3 biggest orders placed by Italian customers": the superlative ranks the rows
    /// the noun after it names (by what it measures there); what else is named is shown
    /// beside the ranked value.
    fn rank_rows_named_after_superlative(&mut self, links: &[Link], plan: &mut QueryPlan, time: &Time, s: &Walk) {
        const SIZE_WORDS: &[&str] = &["biggest", "largest", "smallest", "highest", "lowest", "priciest", "cheapest"];
        // Not "largest payment for each method", "top 3 slowest pages by average latency";
        // after a pause the details asked ("…: which device recorded it, and how cold?").
        let groups = self.tokens.iter().any(|t| t.is_any(&["each", "per", "every"]));
        let first_pause = self.tokens.iter().position(|t| t.pause_before).unwrap_or(self.tokens.len());
        let asks_before_pause = |words: &[&str]| self.tokens[..first_pause].iter().any(|t| t.is_any(words));
        if groups || asks_before_pause(&["average", "avg", "mean", "total", "sum", "count", "number", "which", "what", "who", "how"]) || !plan.having.is_empty() {
            return;
        }
        let _ = s;
        let found = (0..self.tokens.len()).find_map(|p| {
            // "most humid reading": the adjective after "most".
            let (p, direction) = match superlative(&self.tokens[p].text) {
                Some(d) if self.tokens[p].is_any(&["most", "least"]) && self.tokens.get(p + 1).is_some_and(|t| superlative(&t.text).is_none() && t.number.is_none()) => (p + 1, d),
                Some(d) if !self.tokens[p].is_any(&["more", "less", "top", "bottom"]) => (p, d),
                _ => return None,
            };
            let word = &self.tokens[p];
            // "the warmest reading", "3 biggest orders"; not "… with the warmest reading".
            let before = if self.tokens[p - usize::from(p > 0)].is_any(&["most", "least"]) && p > 0 { p - 1 } else { p };
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
            // (read with the ranking: "the 3 biggest orders").
            let relations: Vec<usize> = match links.iter().find(|l| l.start == noun_at) {
                Some(link) => link
                    .candidates
                    .iter()
                    .filter_map(|c| match c.target {
                        Target::Relation(r) if c.evidence >= Evidence::Comment => Some(r),
                        Target::Value(r, _, _) if c.evidence >= Evidence::Value => Some(r),
                        _ => None,
                    })
                    .collect(),
                None => (0..self.catalog.relations.len()).filter(|&r| crate::ask::words::identifier_words(&self.catalog.relations[r].name).last() == Some(&noun.stem)).collect(),
            };
            relations.into_iter().find_map(|r| {
                let column = self.adjective_column(r, &word.text).or_else(|| word.is_any(SIZE_WORDS).then(|| self.main_measure(r)).flatten())?;
                Some((r, column, direction))
            })
        });
        let Some((rows, ranked, descending)) = found else { return };
        if !plan.is_aggregate() && plan.limit.is_some() && plan.order.first().is_some_and(|(k, _)| *k == OrderKey::Column(ranked)) {
            return;
        }
        // What else the question named: listed columns, groups, a text column "measured".
        let mut shown: Vec<ColumnRef> = plan.columns.clone();
        shown.extend(plan.group_by.iter().filter_map(|g| if let GroupKey::Column(c) = g { Some(*c) } else { None }));
        shown.extend(plan.measures.iter().filter_map(|m| m.column.filter(|c| !is_numeric(&self.column(*c).data_type))));
        shown.dedup();
        // "largest order placed by a small business": the largest amount, as asked.
        if shown.is_empty() && plan.is_aggregate() {
            return;
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

    /// Whether `label` describes the things `group` groups: a column of the same relation,
    /// or of the relation a grouped key refers to (`readings.device_id` → `devices.site`).
    /// The key the group joins by is no label of it ("id and number of searches").
    fn labels_same_things(&self, group: ColumnRef, label: ColumnRef) -> bool {
        group.relation == label.relation || (is_key_name(&self.column(group).name) && self.key_pair(group.relation, label.relation).is_some() && !self.joined_keys(group, label))
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


    /// "which freezer logged the warmest single reading": the one row with the warmest
    /// reading, and the group it belongs to — not the group with the warmest average.
    fn single_row_ranked(&mut self, plan: &mut QueryPlan, s: &Walk) {
        let Some(word_at) = s.rank_word.as_ref().and_then(|w| self.tokens.iter().position(|t| &t.text == w)) else { return };
        let noun_at = if self.tokens.get(word_at + 1).is_some_and(|t| t.is("single")) { word_at + 2 } else { word_at + 1 };
        let row_noun = self.tokens.get(noun_at).is_some_and(|t| {
            t.text == t.stem && self.catalog.relations.iter().any(|r| crate::ask::words::identifier_words(&r.name).last() == Some(&t.stem))
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
