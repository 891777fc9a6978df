//! custom-embedder, the product spec's example vectorizer: a hashing vectorizer written
//! in Rust on weaviate_plugin_sdk, built as WebAssembly and as a native shared library.
//!
//! `init` loads the model file named by `config.modelPath` (through the directory the
//! manifest grants: build/model is /model in the sandbox); `vectorize_text` encodes a
//! text as the signed, weighted sum of its hashed features -- character trigrams of the
//! (lower-cased) text framed by spaces, and whole words -- and L2-normalises it.
//!
//! The model file (little-endian): b"WVHM", u32 version 1, u32 dims, u32 seed, then
//! dims float32 weights; build.sh writes it (src/make_model.py).

use weaviate_plugin_sdk::*;

/// The loaded model: a seed for the feature hash and one weight per dimension.
struct Model {
    seed: u32,
    weights: Vec<f32>,
}

impl Model {
    fn load(path: &str) -> Result<Model> {
        let data = std::fs::read(path)
            .map_err(|e| Error::new(format!("cannot read the model {}: {}", path, e)))?;
        let u32_at = |i: usize| u32::from_le_bytes([data[i], data[i + 1], data[i + 2], data[i + 3]]);
        if data.len() < 16 || &data[..4] != b"WVHM" || u32_at(4) != 1 {
            return Err(Error::new(format!("{} is not a WVHM version 1 model file", path)));
        }
        let dims = u32_at(8) as usize;
        if dims == 0 || dims > 65536 || data.len() != 16 + 4 * dims {
            return Err(Error::new(format!("the model {} is truncated or has bad dimensions", path)));
        }
        let weights = data[16..]
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        Ok(Model { seed: u32_at(12), weights })
    }

    fn dims(&self) -> usize {
        self.weights.len()
    }

    fn add(&self, out: &mut [f32], feature: &[u8], kind: u8) {
        let mut h = 2166136261u32 ^ self.seed;
        for b in std::iter::once(&kind).chain(feature) {
            h = (h ^ *b as u32).wrapping_mul(16777619);
        }
        let d = (h % self.dims() as u32) as usize;
        out[d] += if h & 0x8000_0000 != 0 { -self.weights[d] } else { self.weights[d] };
    }

    fn encode(&self, text: &str, lowercase: bool) -> Vec<f32> {
        let text = if lowercase { text.to_lowercase() } else { text.to_string() };
        let mut out = vec![0f32; self.dims()];
        // character trigrams of " text "
        let chars: Vec<char> = std::iter::once(' ').chain(text.chars()).chain(std::iter::once(' ')).collect();
        let mut buf = [0u8; 12];
        for window in chars.windows(3) {
            let mut n = 0;
            for c in window {
                n += c.encode_utf8(&mut buf[n..]).len();
            }
            self.add(&mut out, &buf[..n], b't');
        }
        // whole words
        for word in text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()) {
            self.add(&mut out, word.as_bytes(), b'w');
        }
        let norm = out.iter().map(|x| (*x as f64) * (*x as f64)).sum::<f64>().sqrt();
        if norm > 0.0 {
            let scale = (1.0 / norm) as f32;
            out.iter_mut().for_each(|x| *x *= scale);
        }
        out
    }
}

/// The plugin: the model and the config it was initialised with.
#[derive(Default)]
pub struct CustomVectorizer {
    model: Option<Model>,
    lowercase: bool,
}

impl VectorizerPlugin for CustomVectorizer {
    fn init(&mut self, config: Config) -> Result<()> {
        let path = config.get_path("modelPath")?;
        let model = Model::load(&path.to_string_lossy())?;
        let dims = config.get_i64_or("dimensions", model.dims() as i64)?;
        if dims != model.dims() as i64 {
            return Err(Error::invalid(format!(
                "config.dimensions is {} but the model has {}",
                dims,
                model.dims()
            )));
        }
        self.lowercase = config.get_bool_or("lowercase", true)?;
        println!("custom-embedder: loaded {} ({} dimensions)", path.display(), model.dims());
        self.model = Some(model);
        Ok(())
    }

    fn vectorize_text(&self, text: &str) -> Result<Vec<f32>> {
        let model = self.model.as_ref().ok_or("the model is not loaded")?;
        Ok(model.encode(text, self.lowercase))
    }
}

export_vectorizer!(CustomVectorizer);
