//! `ASK`'s offline translator: questions in English to SQL with no model and no network.
//!
//! [`words`] tokenizes; [`link`] finds which words name relations, columns (by name or
//! `COMMENT ON` text) and stored values; [`understand`] reads the question's structure
//! into a typed [`plan::QueryPlan`]; the plan renders SQL naming only linked things.
//! A word it cannot place is a refusal, never a guess; choices between equally good
//! readings are stated as notes (notices for the user).

mod link;
mod meaning;
mod plan;
mod understand;
mod words;

use std::sync::Arc;

use streamhouse_executor::{AskCatalog, Refusal, Translation, Translator};

use crate::embed::Embedder;

/// Reads questions by words, and by meaning when the embedding model is loaded.
pub struct OfflineTranslator {
    meaning: Option<meaning::MeaningLinker>,
}

impl OfflineTranslator {
    /// With `embedder`, words the lexicon cannot place are linked by sentence embeddings.
    pub fn new(embedder: Option<Arc<Embedder>>) -> Self {
        OfflineTranslator { meaning: embedder.map(meaning::MeaningLinker::new) }
    }
}

impl Translator for OfflineTranslator {
    fn translate(&self, question: &str, catalog: &AskCatalog) -> Result<Translation, Refusal> {
        let lexicon = link::Lexicon::new(catalog);
        let reading = understand::understand(question, catalog, &lexicon, self.meaning.as_ref())?;
        let mut notes = reading.notes;
        if self.meaning.is_none() {
            notes.push("linked by words alone: no embedding model is loaded (embedding_model_dir)".into());
        }
        Ok(Translation { sql: reading.plan.to_sql(catalog), notes })
    }
}

/// The relations (indexes into `catalog.relations`) that the question's words link to by
/// name, comment or stored value, in catalog order: what a generative translator is shown.
pub fn linked_relations(question: &str, catalog: &AskCatalog) -> Vec<usize> {
    let tokens = words::tokenize(question);
    let links = link::Lexicon::new(catalog).link(&tokens, &vec![false; tokens.len()]);
    let mut relations: Vec<usize> = links
        .iter()
        .flat_map(|l| &l.candidates)
        .filter(|c| c.evidence != link::Evidence::Concept)
        .map(|c| match &c.target {
            link::Target::Relation(r) | link::Target::Column(r, _) | link::Target::Value(r, _, _) | link::Target::Prefix(r, _, _) => *r,
        })
        .collect();
    relations.sort_unstable();
    relations.dedup();
    relations
}

#[cfg(test)]
mod tests;
