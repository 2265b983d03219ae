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

#[cfg(test)]
mod tests;
