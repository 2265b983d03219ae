//! all-MiniLM-L6-v2 sentence embeddings with candle: tokenize (BERT WordPiece, at most
//! 256 tokens as sentence-transformers does), run the encoder, average the token vectors
//! under the attention mask, L2-normalise.

use std::path::Path;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use tokenizers::{Encoding, PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

/// Length of every embedding.
pub const EMBEDDING_DIMENSIONS: usize = 384;

/// Tokens read per text; longer texts are truncated (the model's training length).
const MAX_TOKENS: usize = 256;

/// Texts encoded per forward pass: bounds the activations held at once.
const TEXTS_PER_PASS: usize = 64;

/// The files a model folder must hold.
pub const MODEL_FILES: [&str; 3] = ["config.json", "tokenizer.json", "model.safetensors"];

pub struct Embedder {
    model: BertModel,
    tokenizer: Tokenizer,
    device: Device,
}

impl std::fmt::Debug for Embedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Embedder").finish_non_exhaustive()
    }
}

impl Embedder {
    /// Loads the model from `dir` (see [`MODEL_FILES`]).
    pub fn load(dir: &Path) -> Result<Embedder, String> {
        let read = |name: &str| std::fs::read(dir.join(name)).map_err(|e| format!("{}: {e}", dir.join(name).display()));
        let config: Config =
            serde_json::from_slice(&read("config.json")?).map_err(|e| format!("{}: {e}", dir.join("config.json").display()))?;
        let device = Device::Cpu;
        let weights = VarBuilder::from_buffered_safetensors(read("model.safetensors")?, DType::F32, &device)
            .map_err(|e| format!("model.safetensors: {e}"))?;
        let model = BertModel::load(weights, &config).map_err(|e| format!("model.safetensors does not hold a BERT model: {e}"))?;
        let mut tokenizer = Tokenizer::from_bytes(read("tokenizer.json")?).map_err(|e| format!("tokenizer.json: {e}"))?;
        // The file pads every text to 128 tokens; padding to the longest of a batch gives
        // the same vectors for much less work on short texts.
        tokenizer.with_padding(Some(PaddingParams { strategy: PaddingStrategy::BatchLongest, ..Default::default() }));
        tokenizer
            .with_truncation(Some(TruncationParams { max_length: MAX_TOKENS, ..Default::default() }))
            .map_err(|e| format!("tokenizer.json: {e}"))?;
        Ok(Embedder { model, tokenizer, device })
    }

    /// One unit-length vector of [`EMBEDDING_DIMENSIONS`] per text.
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, String> {
        let mut out = Vec::with_capacity(texts.len());
        for chunk in texts.chunks(TEXTS_PER_PASS) {
            out.extend(self.embed_pass(chunk).map_err(|e| format!("embedding failed: {e}"))?);
        }
        Ok(out)
    }

    fn embed_pass(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, Box<dyn std::error::Error + Send + Sync>> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let encodings = self.tokenizer.encode_batch(texts.to_vec(), true)?;
        let (rows, tokens) = (encodings.len(), encodings[0].len());
        let tensor = |field: fn(&Encoding) -> &[u32]| -> candle_core::Result<Tensor> {
            let flat: Vec<u32> = encodings.iter().flat_map(|e| field(e).iter().copied()).collect();
            Tensor::from_vec(flat, (rows, tokens), &self.device)
        };
        let ids = tensor(Encoding::get_ids)?;
        let type_ids = tensor(Encoding::get_type_ids)?;
        let mask = tensor(Encoding::get_attention_mask)?;
        let hidden = self.model.forward(&ids, &type_ids, Some(&mask))?; // [rows, tokens, 384]
        let weights = mask.to_dtype(DType::F32)?.unsqueeze(2)?; // [rows, tokens, 1]
        let summed = hidden.broadcast_mul(&weights)?.sum(1)?;
        let counts = weights.sum(1)?.clamp(1e-9f32, f32::MAX)?;
        let mean = summed.broadcast_div(&counts)?;
        let norms = mean.sqr()?.sum_keepdim(1)?.sqrt()?.clamp(1e-12f32, f32::MAX)?;
        Ok(mean.broadcast_div(&norms)?.to_vec2::<f32>()?)
    }
}
