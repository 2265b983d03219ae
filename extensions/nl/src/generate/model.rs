//! A local generative model from one GGUF file: the weights (candle's quantized Qwen2,
//! Qwen3 and Llama loaders, chosen by `general.architecture`), the tokenizer rebuilt from
//! the file's own `tokenizer.ggml.*` metadata, the chat format its special tokens imply,
//! and greedy decoding (the same question gives the same SQL).

use std::collections::HashSet;
use std::path::Path;
use std::time::Instant;

use candle_core::quantized::gguf_file::{Content, Value};
use candle_core::{Device, Tensor};
use candle_transformers::models::{quantized_llama, quantized_qwen2, quantized_qwen3};
use tokenizers::models::bpe::{Vocab, BPE};
use tokenizers::{AddedToken, Tokenizer};

/// The longest prompt a model is given, whatever context it allows: a pass's attention
/// memory grows with the square of the tokens it runs (about 30 MB per head at 3 K).
pub const MAX_PROMPT_TOKENS: usize = 3072;
/// Prompt tokens run through the model in one pass. Fixed-size passes also bound the
/// causal masks candle's models keep (one per pass shape); the remainder goes one token at
/// a time, which needs no mask.
const PREFILL_CHUNK: usize = 256;

/// How Qwen2/Qwen3 split text before byte-level BPE (`tokenizer.ggml.pre = "qwen2"`).
const QWEN2_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
/// How Llama 3 splits text (`"llama-bpe"`): digits in runs of up to three.
const LLAMA3_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// GGUF token type of control tokens (`<|im_start|>`, `<|eot_id|>`): never split.
const CONTROL_TOKEN: i32 = 3;
/// GGUF token type of user-defined tokens, also matched whole.
const USER_DEFINED_TOKEN: i32 = 4;

enum Weights {
    Qwen2(quantized_qwen2::ModelWeights),
    Qwen3(quantized_qwen3::ModelWeights),
    Llama(quantized_llama::ModelWeights),
}

impl Weights {
    fn forward(&mut self, input: &Tensor, position: usize) -> candle_core::Result<Tensor> {
        match self {
            Weights::Qwen2(m) => m.forward(input, position),
            Weights::Qwen3(m) => m.forward(input, position),
            Weights::Llama(m) => m.forward(input, position),
        }
    }

    fn clear_kv_cache(&mut self) {
        match self {
            Weights::Qwen2(m) => m.clear_kv_cache(),
            Weights::Qwen3(m) => m.clear_kv_cache(),
            Weights::Llama(m) => m.clear_kv_cache(),
        }
    }
}

/// How a conversation is laid out for the model, from the special tokens its vocabulary has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChatFormat {
    /// `<|im_start|>role\n…<|im_end|>` (Qwen).
    ChatMl,
    /// ChatML for a model that thinks first (Qwen3): the answer starts after an empty
    /// `<think></think>`, as Qwen3's own template does when thinking is off.
    ChatMlNoThinking,
    /// `<|start_header_id|>role<|end_header_id|>\n\n…<|eot_id|>` (Llama 3).
    Llama3,
    /// No chat tokens: plain headed sections.
    Plain,
}

/// One turn of a conversation.
pub struct Turn<'a> {
    pub role: &'a str,
    pub text: &'a str,
}

impl ChatFormat {
    /// The conversation as the model's prompt, ending where the assistant's answer starts.
    pub fn render(self, turns: &[Turn]) -> String {
        let mut out = String::new();
        if self == ChatFormat::Llama3 {
            out.push_str("<|begin_of_text|>");
        }
        for turn in turns {
            match self {
                ChatFormat::ChatMl | ChatFormat::ChatMlNoThinking => {
                    out.push_str(&format!("<|im_start|>{}\n{}<|im_end|>\n", turn.role, turn.text))
                }
                ChatFormat::Llama3 => {
                    out.push_str(&format!("<|start_header_id|>{}<|end_header_id|>\n\n{}<|eot_id|>", turn.role, turn.text))
                }
                ChatFormat::Plain => out.push_str(&format!("### {}\n{}\n\n", turn.role, turn.text)),
            }
        }
        match self {
            ChatFormat::ChatMl => out.push_str("<|im_start|>assistant\n"),
            ChatFormat::ChatMlNoThinking => out.push_str("<|im_start|>assistant\n<think>\n\n</think>\n\n"),
            ChatFormat::Llama3 => out.push_str("<|start_header_id|>assistant<|end_header_id|>\n\n"),
            ChatFormat::Plain => out.push_str("### assistant\n"),
        }
        out
    }
}

/// A loaded model, ready to complete prompts (one at a time: it holds a KV cache).
pub struct LocalModel {
    weights: Weights,
    tokenizer: Tokenizer,
    format: ChatFormat,
    /// Tokens that end an answer (end of sequence, end of turn).
    stop: HashSet<u32>,
    context_length: usize,
    architecture: String,
}

impl LocalModel {
    pub fn load(path: &Path) -> Result<LocalModel, String> {
        let mut file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let content = Content::read(&mut file).map_err(|e| format!("{} is not a GGUF file: {e}", path.display()))?;
        let text = |key: &str| content.metadata.get(key).and_then(|v| v.to_string().ok()).cloned();
        let architecture = text("general.architecture").ok_or("the GGUF file names no general.architecture")?;
        let context_length = content
            .metadata
            .get(&format!("{architecture}.context_length"))
            .and_then(|v| v.to_u32().ok())
            .ok_or_else(|| format!("the GGUF file has no {architecture}.context_length"))? as usize;
        let tokenizer = tokenizer_from_gguf(&content.metadata)?;
        let vocab = tokenizer.get_vocab(true);
        let format = if vocab.contains_key("<|im_start|>") && vocab.contains_key("<think>") && vocab.contains_key("</think>") {
            ChatFormat::ChatMlNoThinking
        } else if vocab.contains_key("<|im_start|>") && vocab.contains_key("<|im_end|>") {
            ChatFormat::ChatMl
        } else if vocab.contains_key("<|start_header_id|>") && vocab.contains_key("<|eot_id|>") {
            ChatFormat::Llama3
        } else {
            ChatFormat::Plain
        };
        let mut stop: HashSet<u32> = ["<|im_end|>", "<|eot_id|>", "<|endoftext|>", "<|end_of_text|>"]
            .iter()
            .filter_map(|t| vocab.get(*t).copied())
            .collect();
        if let Some(eos) = content.metadata.get("tokenizer.ggml.eos_token_id").and_then(|v| v.to_u32().ok()) {
            stop.insert(eos);
        }
        let device = Device::Cpu;
        let loaded = |e: candle_core::Error| format!("loading the {architecture} weights: {e}");
        let weights = match architecture.as_str() {
            "qwen2" => Weights::Qwen2(quantized_qwen2::ModelWeights::from_gguf(content, &mut file, &device).map_err(loaded)?),
            "qwen3" => Weights::Qwen3(quantized_qwen3::ModelWeights::from_gguf(content, &mut file, &device).map_err(loaded)?),
            "llama" => Weights::Llama(quantized_llama::ModelWeights::from_gguf(content, &mut file, &device).map_err(loaded)?),
            other => return Err(format!("model architecture {other:?} is not supported (qwen2, qwen3 and llama are)")),
        };
        Ok(LocalModel { weights, tokenizer, format, stop, context_length, architecture })
    }

    pub fn format(&self) -> ChatFormat {
        self.format
    }

    pub fn architecture(&self) -> &str {
        &self.architecture
    }

    /// The model's greedy continuation of `prompt`, at most `max_tokens` tokens, up to the
    /// first stop token; an error once `deadline` passes (checked between passes).
    pub fn complete(&mut self, prompt: &str, max_tokens: usize, deadline: Instant) -> Result<String, String> {
        let encoding = self.tokenizer.encode(prompt, false).map_err(|e| format!("tokenizing the prompt: {e}"))?;
        let prompt_ids = encoding.get_ids();
        let limit = MAX_PROMPT_TOKENS.min(self.context_length.saturating_sub(max_tokens));
        if prompt_ids.is_empty() || prompt_ids.len() > limit {
            return Err(format!("the prompt takes {} tokens; at most {limit} are given to the model", prompt_ids.len()));
        }
        let failed = |e: candle_core::Error| format!("running the model: {e}");
        let late = || Err("the model took longer than its time limit".to_string());
        self.weights.clear_kv_cache();
        let mut position = 0;
        let mut logits = None;
        while position < prompt_ids.len() {
            let step = if prompt_ids.len() - position >= PREFILL_CHUNK { PREFILL_CHUNK } else { 1 };
            let input = Tensor::new(&prompt_ids[position..position + step], &Device::Cpu).and_then(|t| t.unsqueeze(0)).map_err(failed)?;
            logits = Some(self.weights.forward(&input, position).map_err(failed)?);
            position += step;
            if Instant::now() > deadline {
                return late();
            }
        }
        let mut next = greedy(&logits.expect("a non-empty prompt ran")).map_err(failed)?;
        let mut answer = Vec::new();
        while !self.stop.contains(&next) && answer.len() < max_tokens {
            if Instant::now() > deadline {
                return late();
            }
            answer.push(next);
            let input = Tensor::new(&[next], &Device::Cpu).and_then(|t| t.unsqueeze(0)).map_err(failed)?;
            next = greedy(&self.weights.forward(&input, position).map_err(failed)?).map_err(failed)?;
            position += 1;
        }
        self.tokenizer.decode(&answer, true).map_err(|e| format!("decoding the answer: {e}"))
    }
}

/// The most likely next token.
fn greedy(logits: &Tensor) -> candle_core::Result<u32> {
    logits.flatten_all()?.argmax(0)?.to_scalar::<u32>()
}

/// The tokenizer a GGUF file describes. Byte-level BPE (`tokenizer.ggml.model = "gpt2"`,
/// what Qwen2, Qwen3 and Llama 3 use) is rebuilt from its tokens and merges, with the
/// control tokens kept whole; SentencePiece vocabularies (`"llama"`) are refused.
pub fn tokenizer_from_gguf(metadata: &std::collections::HashMap<String, Value>) -> Result<Tokenizer, String> {
    let model = metadata.get("tokenizer.ggml.model").and_then(|v| v.to_string().ok()).ok_or("the GGUF file has no tokenizer (tokenizer.ggml.model)")?;
    if model != "gpt2" {
        return Err(format!("tokenizer model {model:?} is not supported: only byte-level BPE (\"gpt2\": Qwen2, Qwen3, Llama 3) is"));
    }
    let strings = |key: &str| -> Result<Vec<String>, String> {
        match metadata.get(key) {
            Some(Value::Array(values)) => values
                .iter()
                .map(|v| v.to_string().cloned().map_err(|e| format!("{key}: {e}")))
                .collect(),
            Some(_) => Err(format!("{key} is not an array")),
            None => Ok(Vec::new()),
        }
    };
    let tokens = strings("tokenizer.ggml.tokens")?;
    if tokens.is_empty() {
        return Err("the GGUF file has no tokenizer.ggml.tokens".into());
    }
    let merges: Vec<(String, String)> = strings("tokenizer.ggml.merges")?
        .iter()
        .filter_map(|m| m.split_once(' ').map(|(a, b)| (a.to_string(), b.to_string())))
        .collect();
    let types: Vec<i32> = match metadata.get("tokenizer.ggml.token_type") {
        Some(Value::Array(values)) => values.iter().map(|v| v.to_i32().unwrap_or(1)).collect(),
        _ => Vec::new(),
    };
    let vocab: Vocab = tokens.iter().enumerate().map(|(id, t)| (t.clone(), id as u32)).collect();
    let bpe = BPE::builder().vocab_and_merges(vocab, merges).build().map_err(|e| format!("building the tokenizer: {e}"))?;
    let mut tokenizer = Tokenizer::new(bpe);
    // The model's own split rules when the file names them; GPT-2's otherwise.
    let split = match metadata.get("tokenizer.ggml.pre").and_then(|v| v.to_string().ok()).map(String::as_str) {
        Some("qwen2") => Some(QWEN2_SPLIT),
        Some("llama-bpe" | "llama3") => Some(LLAMA3_SPLIT),
        _ => None,
    };
    use tokenizers::pre_tokenizers::byte_level::ByteLevel;
    match split {
        Some(pattern) => {
            let split = tokenizers::pre_tokenizers::split::Split::new(
                tokenizers::pre_tokenizers::split::SplitPattern::Regex(pattern.to_string()),
                tokenizers::SplitDelimiterBehavior::Isolated,
                false,
            )
            .map_err(|e| format!("the tokenizer's split rule: {e}"))?;
            tokenizer.with_pre_tokenizer(Some(tokenizers::pre_tokenizers::sequence::Sequence::new(vec![
                split.into(),
                ByteLevel::new(false, true, false).into(),
            ])));
        }
        None => {
            tokenizer.with_pre_tokenizer(Some(ByteLevel::new(false, true, true)));
        }
    }
    tokenizer.with_decoder(Some(tokenizers::decoders::byte_level::ByteLevel::default()));
    let special: Vec<AddedToken> = tokens
        .iter()
        .zip(types.iter().copied().chain(std::iter::repeat(1)))
        .filter(|(_, kind)| *kind == CONTROL_TOKEN || *kind == USER_DEFINED_TOKEN)
        .map(|(t, _)| AddedToken::from(t.clone(), true))
        .collect();
    tokenizer.add_special_tokens(special).map_err(|e| format!("adding the control tokens: {e}"))?;
    Ok(tokenizer)
}
