//! Links dropped or narrowed before their roles are read: verbs that only look like a
//! stored value, readings of weak words in relations the question cannot reach, money
//! words that speak of time ("time spent"), and — with the embedding model — content
//! words no phrase placed, linked by meaning.

use super::*;

impl Reader<'_> {
    /// "page views that returned a 500": a verb that happens to be a stored value of a
    /// relation the question cannot reach ('returned' orders) is read as a verb.
    pub(super) fn drop_stray_verbs(&mut self, links: &mut Vec<Link>) {
        // Relations other links name outright or hold a stored value of ("a 500").
        let anchors_besides = |start: usize| -> Vec<usize> {
            links
                .iter()
                .filter(|l| l.start != start)
                .flat_map(|l| {
                    l.candidates.iter().filter_map(|c| match (&c.target, c.evidence) {
                        (Target::Relation(r), Evidence::Name) | (Target::Value(r, _, _), Evidence::Value) => Some(*r),
                        _ => None,
                    })
                })
                .collect()
        };
        let anchors_of: Vec<Vec<usize>> = links.iter().map(|l| anchors_besides(l.start)).collect();
        let mut kept = Vec::new();
        for (link, anchors) in std::mem::take(links).into_iter().zip(anchors_of) {
            if anchors.is_empty() {
                kept.push(link);
                continue;
            }
            let token = &self.tokens[link.start];
            // "returned", or a verb of the question's vocabulary read as a value's form
            // ("did the checkout page return": not the 'returned' orders).
            let verb = link.end == link.start + 1 && !token.quoted && ((token.text.ends_with("ed") && token.text.chars().all(char::is_alphabetic)) || (FILLER.contains(&token.text.as_str()) && link.best_evidence() < Evidence::Value));
            // "accounts created in the last 90 days": the verb of the rows' own time, not
            // another relation's `created_at`.
            let time_verb = verb && FILLER.contains(&token.text.as_str()) && link.candidates.iter().all(|c| matches!(c.target, Target::Column(r, col) if is_temporal(&self.catalog.relations[r].columns[col].data_type)));
            if time_verb {
                self.used[link.start] = true;
                continue;
            }
            let reachable = |r: usize| anchors.contains(&r) || anchors.iter().any(|a| self.join_path(&[*a], r).is_some());
            if verb && !link.candidates.iter().any(|c| reachable(target_relation(&c.target))) {
                self.notes.push(format!("read \"{}\" as a verb", token.raw));
                self.used[link.start] = true;
                continue;
            }
            kept.push(link);
        }
        *links = kept;
    }

    /// "clients whose average purchase is above 400 euros": readings of a word in relations
    /// the question's unambiguous words cannot reach ('purchase' events of another schema)
    /// give way to the link's other readings (the orders); "humidity above 90: device names
    /// and values": a word for values whose every reading is out of reach only says "the
    /// values" of what was named.
    pub(super) fn drop_unreachable_readings(&mut self, links: &mut Vec<Link>) {
        const PEOPLE_WORDS: &[&str] = &["customer", "customers", "buyer", "buyers", "client", "clients", "shopper", "shoppers", "user", "users", "account", "accounts"];
        let relations_of = |l: &Link| -> BTreeSet<usize> { l.candidates.iter().map(|c| target_relation(&c.target)).collect() };
        // A link's anchors: the one relation it can mean, and relations it names outright
        // ("email addresses of our enterprise customers" keeps both plans and segments).
        let anchors_of = |l: &Link| -> Vec<usize> {
            let relations = relations_of(l);
            let named = l.candidates.iter().filter_map(|c| match c.target {
                Target::Relation(r) if c.evidence == Evidence::Name => Some(r),
                _ => None,
            });
            if relations.len() == 1 { relations.into_iter().collect() } else { named.collect() }
        };
        let anchored: Vec<Vec<usize>> = links.iter().map(anchors_of).collect();
        // Stored values said as stored, of one relation only ("pro", "click"): they tell
        // which schema the question is in.
        let said_value = |l: &Link| -> Option<usize> {
            let text = self.tokens[l.start..l.end].iter().map(|t| t.stem.as_str()).collect::<Vec<_>>().join(" ");
            let relations = relations_of(l);
            let literal = l.candidates.iter().any(|c| matches!(&c.target, Target::Value(_, _, v) if c.evidence >= Evidence::Value && v.to_lowercase().replace('_', " ").starts_with(&text)));
            (relations.len() == 1 && literal).then(|| relations.into_iter().next()).flatten()
        };
        let value_anchors: Vec<Option<usize>> = links.iter().map(said_value).collect();
        let mut dropped = Vec::new();
        for (k, link) in links.iter_mut().enumerate() {
            let anchors: Vec<usize> = anchored.iter().enumerate().filter(|(j, _)| *j != k).flat_map(|(_, rs)| rs.iter().copied()).collect();
            if anchors.is_empty() {
                continue;
            }
            // Next to an anchor: a longer way round is no evidence of what the word means.
            let reachable = |r: usize| anchors.iter().any(|a| *a == r || self.key_pair(*a, r).is_some());
            // A name says what it says; a stored value or a comment may give way — and so
            // may a word for people ("enterprise customers" among web users: the users).
            let by_value = |r: usize| value_anchors.iter().enumerate().any(|(j, a)| j != k && a.is_some_and(|a| a == r || self.key_pair(a, r).is_some()));
            let people = link.end == link.start + 1
                && self.tokens[link.start].is_any(PEOPLE_WORDS)
                && !link.candidates.iter().any(|c| c.evidence == Evidence::Name && reachable(target_relation(&c.target)))
                && link.candidates.iter().any(|c| matches!(c.target, Target::Relation(r) if by_value(r)));
            if (link.best_evidence() < Evidence::Name || people) && link.candidates.iter().any(|c| reachable(target_relation(&c.target))) {
                link.candidates.retain(|c| reachable(target_relation(&c.target)));
            }
            let generic = link.end == link.start + 1 && self.tokens[link.start].is_any(&["value", "values"]) && link.best_evidence() < Evidence::Value;
            // "which way of paying did people use": people in general, not the users of
            // another schema.
            let general_people = link.end == link.start + 1 && self.tokens[link.start].is_any(&["people", "person", "persons"]) && link.best_evidence() == Evidence::Concept;
            // "page loads that came back with a 200": everyday words, not the 'returned'
            // orders of another schema.
            let text: Vec<&str> = self.tokens[link.start..link.end].iter().map(|t| t.text.as_str()).collect();
            let everyday_phrase = link.end > link.start + 1 && is_value_phrase(&text.join(" "));
            if (generic || general_people || everyday_phrase) && !link.candidates.iter().any(|c| reachable(target_relation(&c.target))) {
                dropped.push(k);
            }
        }
        for k in dropped.into_iter().rev() {
            let link = links.remove(k);
            self.mark(link.start..link.end);
        }
    }

    /// Links the content words no phrase placed by their meaning (see [`MeaningLinker`]).
    pub(super) fn link_by_meaning(&mut self, meaning: &MeaningLinker, links: &mut Vec<Link>) {
        let placed = |i: usize| links.iter().any(|l| (l.start..l.end).contains(&i));
        let open: Vec<usize> = (0..self.tokens.len()).filter(|&i| !self.used[i] && !placed(i) && is_content_word(&self.tokens[i])).collect();
        let words: Vec<String> = open.iter().map(|&i| self.tokens[i].text.clone()).collect();
        match meaning.link(&words, self.catalog) {
            Ok(found) => {
                for (&i, found) in open.iter().zip(found) {
                    let Some(found) = found else { continue };
                    let named = match &found.target {
                        Target::Relation(r) => self.catalog.relations[*r].name.clone(),
                        Target::Column(r, c) => self.column_name(ColumnRef { relation: *r, column: *c }),
                        Target::Value(..) | Target::Prefix(..) => continue,
                    };
                    self.notes.push(format!("linked \"{}\" to {named} by meaning (similarity {:.2})", self.tokens[i].raw, found.similarity));
                    links.push(Link { start: i, end: i + 1, candidates: vec![Candidate { target: found.target, evidence: Evidence::Concept }] });
                }
                links.sort_by_key(|l| l.start);
            }
            Err(e) => self.notes.push(format!("the embedding model failed ({e}); linked by words alone")),
        }
    }

    /// "how much traffic did the blog get": traffic is the rows (page views), not the
    /// referrer column whose comment says "traffic source".
    pub(super) fn read_count_nouns_as_rows(&self, links: &mut [Link]) {
        for link in links.iter_mut().filter(|l| l.end == l.start + 1 && self.tokens[l.start].is_any(COUNT_NOUNS)) {
            let rows = |c: &Candidate| matches!(c.target, Target::Relation(_));
            if link.candidates.iter().any(rows) && link.candidates.iter().filter(|c| rows(c)).map(|c| c.evidence).max() >= link.candidates.iter().filter(|c| !rows(c)).map(|c| c.evidence).max() {
                link.candidates.retain(rows);
            }
        }
    }

    /// "…: which page, which browser, and when": columns asked in a list, so "page" is
    /// the page's column, not the page views.
    pub(super) fn read_listed_whiches_as_columns(&self, links: &mut [Link]) {
        if !self.lists_whiches() {
            return;
        }
        for link in links.iter_mut().filter(|l| l.start > 0 && self.tokens[l.start - 1].is("which")) {
            // A column that names the thing (the path), not its id.
            let named = |c: &Candidate| matches!(c.target, Target::Column(r, col) if !is_key_name(&self.catalog.relations[r].columns[col].name));
            if link.candidates.iter().any(named) {
                link.candidates.retain(named);
            }
        }
    }

    /// "The most recent payment we received: when, how much, and from which customer": a
    /// row named by a superlative, then what is asked of it after a pause — the first
    /// token of that list.
    pub(super) fn details_of_extreme_row(&self) -> Option<usize> {
        const ASKING: &[&str] = &["how", "what", "which", "who", "when", "where", "show", "list", "give", "find", "count", "number", "average", "total", "each", "per"];
        let pause = self.tokens.iter().position(|t| t.pause_before)?;
        let head = &self.tokens[..pause];
        let opens = head.iter().find(|t| !t.is_any(&["the", "our", "my"])).is_some_and(|t| superlative(&t.text).is_some());
        (opens && !head.iter().any(|t| t.is_any(ASKING))).then_some(pause)
    }

    /// "the full reading": every column of it, not a column whose comment says "full".
    pub(super) fn drop_whole_row_words(&mut self, links: &mut Vec<Link>) {
        let whole: Vec<usize> = links.iter().filter(|l| l.end == l.start + 1 && self.whole_row_word_at(l.start)).map(|l| l.start).collect();
        links.retain(|l| !whole.contains(&l.start) || l.end != l.start + 1);
        for at in whole {
            self.mark(at..at + 1);
        }
    }

    /// Whether "which …" is said twice after pauses: a list of columns asked.
    pub(super) fn lists_whiches(&self) -> bool {
        self.tokens.iter().filter(|t| t.is("which") && t.pause_before).count() >= 2
    }

    /// "average more than 120 euros per order", "the least per order on average": an
    /// average over each row of the relation named, not a grouping by it.
    pub(super) fn drop_per_row(&mut self, links: &mut Vec<Link>) {
        let averaged = self.tokens.iter().any(|t| t.is_any(&["average", "averages", "averaging", "avg", "mean", "typical"]));
        // The relations the other links name: "per device" in a question about page views
        // is the device column, not the sensors of another schema.
        let others = |k: usize| -> Vec<usize> { links.iter().enumerate().filter(|(j, _)| *j != k).flat_map(|(_, l)| l.candidates.iter().map(|c| target_relation(&c.target))).collect() };
        let mut dropped = Vec::new();
        for (k, link) in links.iter().enumerate() {
            let noun = &self.tokens[link.start];
            let per = link.start > 0 && self.tokens[link.start - 1].is("per");
            let named = link.candidates.iter().find_map(|c| match c.target {
                Target::Relation(r) if c.evidence == Evidence::Name => Some(r),
                _ => None,
            });
            let row_noun = link.end == link.start + 1 && noun.text == noun.stem && named.is_some_and(|r| others(k).contains(&r));
            if averaged && per && row_noun {
                dropped.push(k);
            }
        }
        for k in dropped.into_iter().rev() {
            let link = links.remove(k);
            self.notes.push(format!("read \"per {}\" as each one's value, not a grouping", self.tokens[link.start].raw));
            self.mark(link.start - 1..link.end);
        }
    }

    /// "total time each user spent on the site": time spent, not money; nothing links it,
    /// so the word stays unread and ASK refuses naming it.
    pub(super) fn drop_time_spent(&self, links: &mut Vec<Link>) {
        let spent = |l: &Link| self.tokens[l.start].is_any(&["spent", "spend", "spends", "spending"]);
        let of_time = |l: &Link| self.tokens[l.start.saturating_sub(4)..l.start].iter().any(|t| t.is_any(&["time", "minutes", "hours", "seconds"]));
        links.retain(|l| !(spent(l) && of_time(l)));
    }
}
