//! Placing one link of the question: the role its words play given what the walk has
//! read so far — a measure ("average latency"), a group key ("per country"), a filter (a
//! stored value, a comparison), a ranked group ("which browser …"), or the relation itself
//! ("how many orders").

use super::*;

impl Reader<'_> {
    /// "… for desktop visitors", "… from enterprise customers": the rows are limited to
    /// those things, which are not what is measured (a few words back, across stored
    /// values and filler).
    fn scoped(&self, link: &Link) -> bool {
        const SCOPE: &[&str] = &["for", "from", "among", "amongst"];
        (link.start.saturating_sub(4)..link.start)
            .rev()
            .take_while(|&j| self.used[j] || FILLER.contains(&self.tokens[j].text.as_str()))
            .any(|j| self.tokens[j].is_any(SCOPE))
    }

    /// Gives one link its role in the question.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn place_link(
        &mut self,
        link: &Link,
        n: usize,
        roles: &[(usize, Role)],
        s: &mut Walk,
        d: &mut Draft,
        context: &mut Vec<usize>,
        top_n: bool,
        wants_time: bool,
    ) -> Result<(), Refusal> {
        // No earlier link said what the question is about: "top 3 Lyon device names …" (a
        // value before) still ranks the names.
        let first_link = !s.subject_said;
        let values: Vec<&Candidate> = link.candidates.iter().filter(|c| matches!(c.target, Target::Value(..) | Target::Prefix(..))).collect();
        let relations: Vec<&Candidate> = link.candidates.iter().filter(|c| matches!(c.target, Target::Relation(_))).collect();
        let plural_word = self.tokens[link.end - 1].text != self.tokens[link.end - 1].stem;
        // "which free accounts …": things, not the time column whose comment mentions
        // "account creation".
        let columns: Vec<&Candidate> = link
            .candidates
            .iter()
            .filter(|c| matches!(c.target, Target::Column(..)))
            .filter(|c| !(plural_word && !relations.is_empty() && c.evidence < Evidence::Name && self.candidate_is(c, is_temporal)))
            .collect();
        // "free-plan users", "free-tier user": the column's name after one of its values
        // (with its relation's: "plan users") only says whose value it is.
        let after_value = n > 0 && matches!(roles[n - 1], (at, Role::Link(_)) if at + 1 == link.start);
        let restates = after_value
            && link.end - link.start <= 2
            && values.is_empty()
            && relations.is_empty()
            && d.values.last().is_some_and(|(c, _, _)| columns.iter().any(|k| as_column(&k.target) == *c));
        if restates && !s.grouping {
            return Ok(());
        }
        // "purchases and total dollars per plan", "cancelled orders and total euros": how
        // many rows the question opens with, beside the total.
        let counted_beside = first_link
            && plural_word
            && self.tokens.get(link.end).is_some_and(|t| t.is("and"))
            && matches!(roles.get(n + 1), Some((_, Role::Aggregate(a))) if *a != Aggregate::Count)
            && d.measures.is_empty();
        let value_evidence = values.iter().map(|c| c.evidence).max();
        let other_evidence = link.candidates.iter().filter(|c| !matches!(c.target, Target::Value(..) | Target::Prefix(..))).map(|c| c.evidence).max();

        let plural = self.tokens[link.end - 1].text != self.tokens[link.end - 1].stem;
        // "customers who bought something": a stored 'purchase' the customers cannot reach
        // (another schema's events) is not what the verb means here.
        let reachable = |r: usize| context.is_empty() || context.iter().any(|c| *c == r || self.join_path(&[*c], r).is_some());
        let values_reachable = values.iter().any(|c| reachable(target_relation(&c.target)));
        let value_first = !values.is_empty() && (other_evidence.is_none() || (value_evidence > other_evidence && values_reachable));
        // "warmer than -15 over the last 7 days, device names and temperatures": after a
        // pause, the words list what to show; the comparison is read at the end.
        let after_pause = s.compare_at.is_some_and(|at| self.pause_between(at, link.start));
        // "how many times did it drop below zero at Lyon": the drop is compared, not a count.
        let event = s.compare.is_some() && s.compare_at.is_some_and(|at| self.tokens[..at].iter().any(|t| t.is_any(EVENT_VERBS)));
        if let (Some((comparison, value, high)), false) = (s.compare, after_pause) {
            // "more than 10 pages", "fewer than 10 views": rows counted, not an id compared.
            // "more than 10 pages": a plural noun for rows right after the number.
            let right_after = s.compare_at.is_some_and(|at| link.start == at + 1) && self.plural_relation_word(link);
            let counts = !relations.is_empty() && (columns.is_empty() || relations.iter().any(|c| c.evidence == Evidence::Name) || self.names_rows(link) || right_after);
            let at_least_one = (comparison == Comparison::GreaterOrEqual && value == 1.0) || (comparison == Comparison::Greater && value == 0.0);
            if counts && at_least_one && high.is_none() {
                // "customers who placed at least one order": those appearing in orders.
                s.compare = None;
                let r = target_relation(&self.choose(&relations, context, wants_time, "relation").target);
                add_context(context, r);
                d.appears_in = Some(r);
                return Ok(());
            }
            if (counts || (s.pending == [Aggregate::Count] && !event)) && (!value_first || !plural) {
                // "more than 5 orders": a count over each group.
                s.compare = None;
                d.having.push(Having { measure: Measure { aggregate: Aggregate::Count, column: None }, comparison, value });
                if !relations.is_empty() {
                    let r = self.choose(&relations, context, wants_time, "relation").target;
                    d.counted = Some(target_relation(&r));
                }
                return Ok(());
            }
            let numeric: Vec<&Candidate> = columns.iter().copied().filter(|c| self.candidate_is(c, is_numeric)).collect();
            // "at least 3 purchases": a count of the rows holding that value (below).
            if !numeric.is_empty() && (!value_first || !plural) {
                s.compare = None;
                let c = as_column(&self.choose(&numeric, context, wants_time, "number").target);
                add_context(context, c.relation);
                let value = s.compare_at.map_or(value, |at| self.scaled(value, c, at));
                match s.pending.first().copied().filter(|a| !matches!(a, Aggregate::Count | Aggregate::CountDistinct)) {
                    // "sensors averaging above 70% humidity": a condition on the average.
                    Some(aggregate) => {
                        d.measures.push(Measure { aggregate, column: Some(c) });
                        d.measure_compares.push((d.measures.len() - 1, comparison, value, high));
                        s.pending.clear();
                    }
                    None => d.filters.push(number_filter(c, comparison, value, high)),
                }
                return Ok(());
            }
        }

        // "who viewed the most pages", "who placed the most orders": the people those rows
        // are about, ranked by how many there are.
        let after_rank_word = matches!(n.checked_sub(1).map(|p| &roles[p]), Some((_, Role::Rank(_))));
        if self.tokens[0].is("who") && after_rank_word && !value_first && d.groups.is_empty() && d.group_relations.is_empty() && d.measures.is_empty() {
            let rows: BTreeSet<usize> = link.candidates.iter().map(|c| target_relation(&c.target)).collect();
            let people: BTreeSet<usize> = (0..self.catalog.relations.len()).filter(|&p| self.holds_people(p) && rows.iter().any(|&r| r != p && self.key_pair(r, p).is_some())).collect();
            if let ([who], Some(r)) = (&people.iter().copied().collect::<Vec<_>>()[..], rows.iter().copied().find(|r| !people.contains(r))) {
                d.measures.push(Measure { aggregate: Aggregate::Count, column: None });
                d.counted = Some(r);
                d.group_relations.push(*who);
                add_context(context, r);
                add_context(context, *who);
                s.which = true;
                return Ok(());
            }
        }

        // "top 5 spenders", "the biggest payers": the people, by the money they spent.
        let agent = self.tokens[link.start..link.end].iter().any(|t| t.is_any(&["spender", "spenders", "payer", "payers"]));
        if agent && !value_first && d.groups.is_empty() && d.group_relations.is_empty() && d.measures.is_empty() {
            let money: Vec<&Candidate> = columns.iter().copied().filter(|c| self.is_money(as_column(&c.target))).collect();
            if !money.is_empty() {
                let c = as_column(&self.choose(&money, context, wants_time, "column").target);
                if let Some(people) = (0..self.catalog.relations.len()).find(|&p| p != c.relation && self.holds_people(p) && self.key_pair(c.relation, p).is_some()) {
                    d.measures.push(Measure { aggregate: Aggregate::Sum, column: Some(c) });
                    d.group_relations.push(people);
                    add_context(context, c.relation);
                    add_context(context, people);
                    return Ok(());
                }
            }
        }

        // A stored value, unless the words name a relation or column at least as well.
        if value_first {
            if let Some((comparison, value, _)) = s.compare.filter(|_| !event) {
                s.compare = None;
                // "sites with fewer than 3 freezers": a count of the rows with that value;
                // "at least one small business client": the rows with it, no count.
                let at_least_one = (comparison == Comparison::GreaterOrEqual && value == 1.0) || (comparison == Comparison::Greater && value == 0.0);
                if !at_least_one {
                    d.having.push(Having { measure: Measure { aggregate: Aggregate::Count, column: None }, comparison, value });
                }
            }
            let chosen = self.choose(&values, context, wants_time, "value");
            if let Target::Value(r, c, v) | Target::Prefix(r, c, v) = &chosen.target {
                let (r, c) = (*r, *c);
                let prefix = matches!(chosen.target, Target::Prefix(..));
                d.values.push((ColumnRef { relation: r, column: c }, Match { text: v.clone(), prefix }, s.negate));
                if is_numeric(&self.catalog.relations[r].columns[c].data_type) && !s.negate {
                    // "500 errors": the number said which status; "errors" adds nothing.
                    // ("not 200 …, per status code": the other statuses, each a group.)
                    d.claimed_columns.push(ColumnRef { relation: r, column: c });
                }
                // "outside the EU and US regions": the negation goes on over "and" / "or".
                let listed_next = self.tokens.get(link.end).is_some_and(|t| t.is_any(&["and", "or", "nor"])) && matches!(roles.get(n + 1), Some((next, Role::Link(_))) if *next == link.end + 1);
                s.negate &= listed_next;
                // "for each Lyon device name": the group is the column that follows.
                let column_follows = matches!(roles.get(n + 1), Some((next, Role::Link(_))) if *next == link.end);
                // "each docs page": the pages under /docs, one group each; "each freezer":
                // each of the named things holding that value.
                // "which blog page loads slowest", "which freezers averaged …": the group asked
                // for is the value's pages or things.
                let which = s.which && d.groups.is_empty() && d.group_relations.is_empty() && (prefix || plural);
                if (s.grouping || which) && !column_follows {
                    if prefix {
                        d.groups.push(ColumnRef { relation: r, column: c });
                        if which {
                            d.ranked_group = Some(ColumnRef { relation: r, column: c });
                        }
                    } else if self.label_column(r).is_some() {
                        d.group_relations.push(r);
                    }
                }
                s.grouping &= column_follows;
                if (s.pending == [Aggregate::Count] && plural) || counted_beside {
                    // "how many purchases …": the rows holding that value.
                    d.measures.push(Measure { aggregate: Aggregate::Count, column: None });
                    d.counted = Some(r);
                    s.pending.clear();
                }
                add_context(context, r);
            }
            return Ok(());
        }

        // "the slowest pages": the group ranked — unless a time bucket is ("which month had the most orders").
        let after_rank = matches!(n.checked_sub(1).map(|p| &roles[p]), Some((_, Role::Rank(_)))) && !d.ranked_bucket;
        let wants_column = s.grouping
            || (after_rank && d.groups.is_empty() && d.measures.is_empty())
            || s.sorting
            || s.distinct
            || s.pending.iter().any(|a| *a != Aggregate::Count)
            || (s.which && d.groups.is_empty())
            || (top_n && first_link && d.groups.is_empty());
        let in_context = |c: &&Candidate| context.contains(&target_relation(&c.target));
        let counted_rows = s.pending == [Aggregate::Count] && !s.distinct && plural && relations.iter().any(|c| c.evidence == Evidence::Name);
        // "coldest freezer reading", "by reading volume": the relation named outright, not a
        // column that only mentions it; "best sales day": the money column, not the orders.
        // ("still have an order pending": an order, the thing, not its status column.)
        let article = link.start > 0 && self.tokens[link.start - 1].is_any(&["a", "an"]);
        let named_outright = relations.iter().any(|c| c.evidence == Evidence::Name) && (columns.iter().all(|c| c.evidence < Evidence::Name) || article) && !s.grouping && (!s.which || article);
        let money_word = self.tokens[link.start..link.end].iter().any(|t| is_money_word(&t.stem)) && columns.iter().any(|c| self.is_money(as_column(&c.target)));
        // "total views of the home page": how many, though "views" also names an id column.
        let total_word = s.pending == [Aggregate::Sum] && plural && s.pending_word.as_deref().is_some_and(|w| w.starts_with("total")) && !columns.iter().any(|c| self.is_money(as_column(&c.target)));
        // "Which account viewed the most pages": the accounts, not when they were created.
        let which_thing = s.which && columns.iter().all(|c| self.candidate_is(c, is_temporal));
        let relation_word = !relations.is_empty()
            && !money_word
            && (columns.is_empty()
                || which_thing
                || named_outright
                || counted_rows
                || total_word
                || (!wants_column
                    && relations.iter().map(|c| c.evidence).max() >= columns.iter().map(|c| c.evidence).max()
                    && (relations.iter().any(in_context) || !columns.iter().any(in_context))));
        // ("for traffic from twitter, average load time …": which rows, not how many.)
        // (Nor "Brazil traffic: mean page load time …": a label names the rows.)
        let count_noun = self.tokens[link.start..link.end].iter().any(|t| t.is_any(COUNT_NOUNS)) && !(link.start > 0 && self.tokens[link.start - 1].is("for")) && link.start >= self.label_end;
        // "The most recent payment: …, and from which customer": the customer's label.
        let detail_of = self.details_of_extreme_row().filter(|from| link.start >= *from).and_then(|_| {
            let r = relations.iter().find(|c| c.evidence == Evidence::Name).map(|c| target_relation(&c.target))?;
            self.label_column(r).filter(|_| self.tokens[link.start..link.end].len() == 1)
        });
        if let Some(label) = detail_of {
            add_context(context, label.relation);
            d.bare_columns.push(label);
            return Ok(());
        }
        if relation_word {
            let r = target_relation(&self.choose(&relations, context, wants_time, "relation").target);
            // "the 3 units …", "the 3 indoor sensors …" (a value between).
            let counted_after_number = (1..=2).any(|k| {
                link.start >= k && self.tokens[link.start - k].number.is_some() && (link.start - k + 1..link.start).all(|j| self.used[j] && !FILLER.contains(&self.tokens[j].text.as_str()))
            });
            // "customers whose orders add up to …": the rows a clause is about, not the ranking.
            let whose = link.start > 0 && self.tokens[link.start - 1].is("whose");
            add_context(context, r);
            // "list the newsletter visits …": the rows, though "visits" alone would count them.
            let listing_verb = self.tokens.first().is_some_and(|t| t.is_any(&["list", "show", "display", "give", "find", "get"]));
            // "total readings", "total events": how many; "total payments": their amount.
            let total_of_things = s.pending == [Aggregate::Sum]
                && plural
                && s.pending_word.as_deref().is_some_and(|w| w.starts_with("total"))
                && !crate::ask::words::identifier_words(&self.catalog.relations[r].name).last().is_some_and(|w| MONEY_ROWS.contains(&w.as_str()));
            // "mobile visits …, newest first": rows in an order, not how many.
            let rows_ordered = self.tokens.windows(2).any(|w| w[0].is_any(&["newest", "latest", "oldest", "earliest", "recent"]) && w[1].is("first"));
            if (s.pending == [Aggregate::Count] || total_of_things || counted_beside || (count_noun && s.pending.is_empty() && !listing_verb && !rows_ordered && d.measures.is_empty())) && !s.distinct {
                d.measures.push(Measure { aggregate: Aggregate::Count, column: None });
                d.counted = Some(r);
                s.pending.clear();
            } else if let (false, Some(m)) = (
                s.pending.is_empty() || s.pending == [Aggregate::Count],
                s.pending_word.as_deref().and_then(|w| self.adjective_column(r, w)).or_else(|| self.main_measure(r)),
            ) {
                // "total payments": the payments' measure.
                for a in std::mem::take(&mut s.pending) {
                    let column = if a == Aggregate::Count { None } else { Some(m) };
                    d.measures.push(Measure { aggregate: a, column });
                }
                s.last_measure = Some(d.measures.len() - 1);
            } else if s.distinct {
                d.distinct_relations.push(r);
                s.distinct = false;
                s.pending.clear();
            } else if s.grouping || ((s.which || (top_n && first_link && counted_after_number)) && d.groups.is_empty() && d.group_relations.is_empty()) {
                // "the 3 units with the weakest average battery": the things ranked.
                d.group_relations.push(r);
                s.grouping = false;
            } else if s.sorting || (s.rank.is_some() && d.ranks_groups() && d.measures.is_empty() && !self.scoped(link) && !whose) {
                // "top 5 pages by views", "which country has the most orders"; "which
                // device sent the coldest reading": by what the adjective measures.
                let adjective = s.rank_word.as_deref().and_then(|w| self.adjective_column(r, w).map(|c| (c, aggregate_word(w).unwrap_or(Aggregate::Max))));
                match adjective {
                    Some((c, aggregate)) => d.measures.push(Measure { aggregate, column: Some(c) }),
                    None => {
                        d.measures.push(Measure { aggregate: Aggregate::Count, column: None });
                        d.counted = Some(r);
                    }
                }
                s.sorting = false;
            } else {
                d.bare_relations.push(r);
            }
            return Ok(());
        }
        if columns.is_empty() {
            return Ok(());
        }
        // "order status counts": how many of each status.
        let counted_each = self.tokens.get(link.end).is_some_and(|t| t.is_any(&["counts", "tallies", "breakdown"])) && columns.iter().any(|c| self.is_categorical(as_column(&c.target)));
        let grouping_now = s.grouping || counted_each || ((s.which || (top_n && first_link) || after_rank) && d.groups.is_empty());
        let claimed: Vec<ColumnRef> = columns.iter().map(|c| as_column(&c.target)).filter(|c| d.claimed_columns.contains(c)).collect();
        // "how fast are 404 pages": the speed, a column beside the status the number claimed.
        let unclaimed: Vec<&Candidate> =
            columns.iter().copied().filter(|c| !claimed.contains(&as_column(&c.target)) && claimed.iter().any(|k| k.relation == target_relation(&c.target))).collect();
        if !claimed.is_empty() && unclaimed.is_empty() {
            // "404 responses": the number already said which status.
            return Ok(());
        }
        // Only a measure takes the other column; "404 responses" asks for nothing more.
        let measuring = s.pending.iter().any(|a| !matches!(a, Aggregate::Count | Aggregate::CountDistinct)) || s.distinct;
        // "which pages has visitor 77 looked at": the group asked for, beside the visitor.
        let which_group = s.which && d.groups.is_empty();
        if !claimed.is_empty() && !measuring && !which_group {
            return Ok(());
        }
        let columns = if claimed.is_empty() { columns } else { unclaimed };
        let mut c = as_column(&self.choose(&columns, context, wants_time, "column").target);
        if s.distinct && !grouping_now && !relations.is_empty() && relations.iter().all(|r| r.evidence < Evidence::Name) {
            // "different pages": the text column the word heads the description of (`path`,
            // "page path or URL"), not the page views' ids.
            let word = &self.tokens[link.end - 1].stem;
            let headed: Vec<&Candidate> = columns.iter().copied().filter(|x| target_relation(&x.target) == c.relation && self.comment_head(&x.target).as_deref() == Some(word.as_str())).collect();
            if let Some(text) = self.prefer_text(headed).into_iter().find(|x| !self.candidate_is(x, is_numeric) && !self.candidate_is(x, is_temporal)) {
                c = as_column(&text.target);
            }
        }
        if grouping_now {
            // Among equally good columns of that relation, a text column names the group.
            let same: Vec<&Candidate> = columns.iter().copied().filter(|x| target_relation(&x.target) == c.relation).collect();
            if let Some(text) = self.prefer_text(same).first() {
                c = as_column(&text.target);
            }
        }
        let reachable = |x: usize| context.iter().any(|r| *r == x || self.key_pair(*r, x).is_some());
        if !context.is_empty() && !reachable(c.relation) && !s.pending.is_empty() {
            // "largest purchase amount" after 'purchase' placed us in events: the
            // amount there, not in a relation the question cannot reach.
            if let Some(m) = context.iter().find_map(|r| self.main_measure(*r)) {
                self.notes.push(format!("read \"{}\" as {}", self.tokens[link.start].raw, self.column_name(m)));
                c = m;
            }
        }
        add_context(context, c.relation);
        if d.claimed_columns.contains(&c) {
            // "500 errors": the number already said which status.
            return Ok(());
        }
        let aggregate_said = roles.iter().any(|(_, r)| matches!(r, Role::Aggregate(_)));
        // ("purchase revenue booked …": a money word in the phrase; "worth more than 800
        // euros" compares each row's money instead.)
        let compared_next = matches!(roles.get(n + 1), Some((_, Role::Compare(..))));
        let totals = self.tokens[link.start].is_any(&["spent", "spend", "spends"]) || (!compared_next && (link.start..link.end).any(|j| is_money_word(&self.tokens[j].stem)));
        if s.pending.is_empty() && !aggregate_said && !s.grouping && !s.sorting && s.rank.is_none() && s.compare.is_none() && totals && self.is_money(c) {
            // "what has customer 100 spent", "September 2025 takings": the total.
            s.pending = vec![Aggregate::Sum];
        }
        let column = self.column(c);
        let numeric = is_numeric(&column.data_type);
        let is_key = is_key_name(&column.name);
        if numeric {
            s.last_numeric = Some(c);
        }
        // "… on average? Country and that average": an average said before a pause is not
        // taken of a text column named after it.
        let measuring = s.pending.iter().any(|a| !matches!(a, Aggregate::Count | Aggregate::CountDistinct));
        let said_before_pause = roles[..n].iter().rev().find_map(|(a, r)| matches!(r, Role::Aggregate(_)).then_some(*a)).is_some_and(|a| self.pause_between(a, link.start));
        let across_pause = measuring && !numeric && !s.distinct && said_before_pause;
        if (s.distinct || !s.pending.is_empty()) && !s.grouping && !across_pause {
            if measuring && (is_key || !numeric) && !s.distinct {
                // "average order value": the order's measure, not its id; a measure
                // named next ("average order amount") takes the aggregate instead.
                let next_is_measure = matches!(roles.get(n + 1), Some((next_at, Role::Link(_))) if *next_at == link.end);
                if next_is_measure {
                    return Ok(());
                }
                let adjective = |r: usize| s.pending_word.as_deref().and_then(|w| self.adjective_column(r, w));
                let measured = adjective(c.relation).or_else(|| self.main_measure(c.relation)).or_else(|| self.reachable(context).into_iter().find_map(adjective));
                if let Some(m) = measured {
                    for a in std::mem::take(&mut s.pending) {
                        d.measures.push(Measure { aggregate: a, column: Some(m) });
                    }
                    s.last_measure = Some(d.measures.len() - 1);
                    return Ok(());
                }
                let says_id = self.tokens[link.start..link.end].iter().any(|t| t.is_any(&["id", "ids", "number", "numbers"]));
                if is_key && !says_id {
                    // "the coldest it got at any indoor sensor": the sensor is where, not what is measured.
                    return Ok(());
                }
            }
            let aggregates: Vec<Aggregate> = if s.distinct { vec![Aggregate::CountDistinct] } else { std::mem::take(&mut s.pending) };
            for aggregate in aggregates {
                let plural_word = self.tokens[link.end - 1].text != self.tokens[link.end - 1].stem;
                let aggregate = match aggregate {
                    // Counting an id counts the distinct things it names; "how many
                    // countries": the distinct countries.
                    Aggregate::Count if is_key || (!numeric && plural_word && !is_temporal(&column.data_type)) => Aggregate::CountDistinct,
                    Aggregate::Count => Aggregate::Count,
                    Aggregate::Sum | Aggregate::Avg if !numeric => Aggregate::CountDistinct,
                    a => a,
                };
                let column = if aggregate == Aggregate::Count { None } else { Some(c) };
                if column.is_none() {
                    // "count of humidity readings": the rows of the relation holding humidity.
                    d.counted.get_or_insert(c.relation);
                }
                d.measures.push(Measure { aggregate, column });
            }
            s.pending.clear();
            s.distinct = false;
            s.sorting = false;
            s.last_measure = Some(d.measures.len() - 1);
            return Ok(());
        }
        if s.grouping || counted_each {
            if !d.groups.contains(&c) {
                d.groups.push(c);
            }
            // "by country and device": the group continues over "and" (not over a pause:
            // "by region, delivered orders only").
            let continues = roles.get(n + 1).is_some_and(|(next_at, r)| {
                matches!(r, Role::Link(_)) && *next_at > link.end && self.tokens[link.end..*next_at].iter().all(|t| t.is_any(&["and", ","]))
            });
            s.grouping = continues;
            return Ok(());
        }
        if (s.which || (top_n && first_link) || after_rank) && d.ranked_group.is_none() && d.groups.is_empty() && (!numeric || is_key) {
            d.groups.push(c);
            d.ranked_group = Some(c);
            return Ok(());
        }
        // "The largest order on record: its order number, amount, and …": the columns listed
        // after a pause are shown; the superlative ranks by its own measure.
        // (Not "the lowest battery …? name and level": there the superlative names its column.)
        let rank_said_before_pause = (0..link.start).rev().find(|&j| superlative(&self.tokens[j].text).is_some()).is_some_and(|a| {
            // ("The 5 smallest delivered orders: …": a value may stand between.)
                        let names_rows = self.tokens[a + 1..link.start.min(a + 4)].iter().take_while(|t| !t.pause_before).any(|t| self.names_a_relation(t));
            names_rows && self.pause_between(a, link.start)
        });
        if s.sorting || (s.rank.is_some() && numeric && d.measures.is_empty() && !rank_said_before_pause) {
            d.order_column = Some((c, s.rank.unwrap_or(false)));
            s.sorting = false;
            return Ok(());
        }
        if column.data_type == arrow::datatypes::DataType::Boolean {
            d.filters.push(Filter::Boolean { column: c, value: !s.negate });
            s.negate = false;
            return Ok(());
        }
        if !numeric && self.tokens[link.end - 1].text != self.tokens[link.end - 1].stem {
            // "regions with revenue above 50000": a plural subject is a group.
            d.plural_subject.get_or_insert(c);
        }
        d.bare_columns.push(c);
        Ok(())
    }
}

/// Rows that are sums of money: their "total" is the amount, not how many.
const MONEY_ROWS: &[&str] = &["payment", "transaction", "invoice", "sale", "charge", "refund", "purchase", "transfer", "payout"];

impl Reader<'_> {
    /// Numbers left after ranges, limits and comparisons are values of integer columns:
    /// "customer 42", "status 500", "404 errors" (404 is in the column's comment).
    pub(super) fn number_values(&mut self, links: &[Link], context: &[usize], d: &mut Draft) {
        for i in 0..self.tokens.len() {
            if self.used[i] || self.tokens[i].number.is_none() || self.tokens[i].quoted {
                continue;
            }
            let value = self.tokens[i].number.expect("checked");
            if value.fract() != 0.0 {
                continue;
            }
            let integer = |c: &&Candidate| matches!(c.target, Target::Column(r, col) if self.catalog.relations[r].columns[col].data_type.is_integer());
            let before = links.iter().find(|l| l.end == i || (l.end + 1 == i && self.tokens[l.end].is_any(&["#", "number", "no", "id"])));
            let mut candidates: Vec<&Candidate> = before.map(|l| l.candidates.iter().filter(integer).collect()).unwrap_or_default();
            // "name and site of device 31": the key of the relation the phrase ends on.
            let key: Option<Candidate> = before.filter(|_| candidates.is_empty()).and_then(|l| {
                let r = l.candidates.first().map(|c| target_relation(&c.target))?;
                self.key_column(r, &[]).filter(|k| self.column(*k).data_type.is_integer()).map(|k| Candidate { target: Target::Column(k.relation, k.column), evidence: Evidence::Name })
            });
            if let Some(key) = &key {
                candidates.push(key);
            }
            if candidates.is_empty() {
                let text = self.tokens[i].text.clone();
                candidates = links.iter().flat_map(|l| l.candidates.iter()).filter(integer).filter(|c| self.comment_mentions(&c.target, &text)).collect();
                if candidates.is_empty() {
                    continue;
                }
            }
            let candidates: Vec<Candidate> = candidates.into_iter().cloned().collect();
            let refs: Vec<&Candidate> = candidates.iter().collect();
            let c = as_column(&self.choose(&refs, context, false, "column").target);
            d.filters.push(Filter::Number { column: c, comparison: Comparison::Equal, value });
            d.claimed_columns.push(c);
            self.used[i] = true;
        }
    }
}
