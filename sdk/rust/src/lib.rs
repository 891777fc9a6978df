//! # weaviate_plugin_sdk
//!
//! Write weaviate-ext plugins in Rust. A plugin is a `cdylib` crate: a struct that
//! implements the trait of its type, and one export macro that generates the C ABI of
//! `hookspecs/weaviate_plugin.h` (ABI version 1) for it:
//!
//! ```ignore
//! use weaviate_plugin_sdk::*;
//!
//! #[derive(Default)]
//! pub struct CustomVectorizer { model: Option<Model> }
//!
//! impl VectorizerPlugin for CustomVectorizer {
//!     fn init(&mut self, config: Config) -> Result<()> {
//!         self.model = Some(Model::load(&config.get_string("modelPath")?)?);
//!         Ok(())
//!     }
//!     fn vectorize_text(&self, text: &str) -> Result<Vec<f32>> {
//!         Ok(self.model.as_ref().ok_or("not initialised")?.encode(text))
//!     }
//! }
//!
//! export_vectorizer!(CustomVectorizer);
//! ```
//!
//! Build for the `wasm` runtime with `cargo build --release --target wasm32-wasi`
//! (`crate-type = ["cdylib"]`), or for `native` with a plain `cargo build --release`.
//!
//! The plugin struct must implement `Default`: the macro creates it (once per wasm
//! instance, or per load of the native library) and then calls `init` with the
//! plugin's config. Every hook gets exclusive access (the host calls one instance
//! from one thread at a time). An `Err` becomes the hook's error status and message;
//! a panic becomes an error too (native) or a trap (wasm, where panics abort).

use std::fmt;

pub mod json;

#[doc(hidden)]
pub mod rt;

pub use json::Value;

/// The ABI version this SDK speaks (`WV_ABI_VERSION`).
pub const ABI_VERSION: u32 = 1;

/// Status codes of the ABI.
pub mod status {
    pub const OK: i32 = 0;
    pub const NOT_FOUND: i32 = 1;
    pub const ABSTAIN: i32 = 2;
    pub const ERROR: i32 = -1;
    pub const NOMEM: i32 = -2;
    pub const INVALID: i32 = -3;
    pub const DENIED: i32 = -4;
}

/// An error a hook returns: a status (see [`status`]) and a message.
#[derive(Clone, Debug, PartialEq)]
pub struct Error {
    pub status: i32,
    pub message: String,
}

impl Error {
    /// A generic error (`WV_ERROR`: the host raises `PluginCallError`).
    pub fn new(message: impl Into<String>) -> Error {
        Error { status: status::ERROR, message: message.into() }
    }
    /// The input is not acceptable (`WV_ERR_INVALID`: `InvalidInput`).
    pub fn invalid(message: impl Into<String>) -> Error {
        Error { status: status::INVALID, message: message.into() }
    }
    /// Out of memory (`WV_ERR_NOMEM`: `ResourceLimitExceeded`).
    pub fn no_memory(message: impl Into<String>) -> Error {
        Error { status: status::NOMEM, message: message.into() }
    }
    /// Credentials recognised and rejected (`WV_ERR_DENIED`: `AuthenticationError`).
    pub fn denied(message: impl Into<String>) -> Error {
        Error { status: status::DENIED, message: message.into() }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

impl From<String> for Error {
    fn from(message: String) -> Error {
        Error::new(message)
    }
}

impl From<&str> for Error {
    fn from(message: &str) -> Error {
        Error::new(message)
    }
}

impl From<std::io::Error> for Error {
    fn from(err: std::io::Error) -> Error {
        Error::new(err.to_string())
    }
}

/// `Result` with the SDK's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

/// A JSON object from the host: the plugin's config (`init`), generation options, or
/// credentials. Typed getters for flat keys; [`Config::get`] for anything nested.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Config {
    members: Vec<(String, Value)>,
}

impl Config {
    /// Parse a JSON object (an empty input is an empty object).
    pub fn parse(bytes: &[u8]) -> Result<Config> {
        let text = std::str::from_utf8(bytes).map_err(|_| Error::invalid("JSON is not UTF-8"))?;
        if text.trim().is_empty() {
            return Ok(Config::default());
        }
        match Value::parse(text).map_err(Error::invalid)? {
            Value::Object(members) => Ok(Config { members }),
            _ => Err(Error::invalid("expected a JSON object")),
        }
    }

    /// The raw value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.members.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// Whether `key` is present (and not null).
    pub fn has(&self, key: &str) -> bool {
        !matches!(self.get(key), None | Some(Value::Null))
    }

    /// The keys, in order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.members.iter().map(|(k, _)| k.as_str())
    }

    /// The string `key`; an error naming the key when it is missing or not a string.
    pub fn get_string(&self, key: &str) -> Result<String> {
        match self.get(key) {
            Some(Value::String(s)) => Ok(s.clone()),
            None | Some(Value::Null) => Err(Error::invalid(format!("config.{} is missing", key))),
            Some(_) => Err(Error::invalid(format!("config.{} must be a string", key))),
        }
    }

    /// The number `key` as f64.
    pub fn get_f64(&self, key: &str) -> Result<f64> {
        match self.get(key) {
            Some(Value::Number(n)) => Ok(*n),
            None | Some(Value::Null) => Err(Error::invalid(format!("config.{} is missing", key))),
            Some(_) => Err(Error::invalid(format!("config.{} must be a number", key))),
        }
    }

    /// The integer `key` (a number without a fractional part).
    pub fn get_i64(&self, key: &str) -> Result<i64> {
        let n = self.get_f64(key)?;
        if n.fract() != 0.0 || n.abs() > 9.0e15 {
            return Err(Error::invalid(format!("config.{} must be an integer, got {}", key, n)));
        }
        Ok(n as i64)
    }

    /// The boolean `key`.
    pub fn get_bool(&self, key: &str) -> Result<bool> {
        match self.get(key) {
            Some(Value::Bool(b)) => Ok(*b),
            None | Some(Value::Null) => Err(Error::invalid(format!("config.{} is missing", key))),
            Some(_) => Err(Error::invalid(format!("config.{} must be true or false", key))),
        }
    }

    /// `get_string`, or `default` when the key is missing.
    pub fn get_string_or(&self, key: &str, default: &str) -> Result<String> {
        if self.has(key) { self.get_string(key) } else { Ok(default.to_string()) }
    }

    /// `get_f64`, or `default` when the key is missing.
    pub fn get_f64_or(&self, key: &str, default: f64) -> Result<f64> {
        if self.has(key) { self.get_f64(key) } else { Ok(default) }
    }

    /// `get_i64`, or `default` when the key is missing.
    pub fn get_i64_or(&self, key: &str, default: i64) -> Result<i64> {
        if self.has(key) { self.get_i64(key) } else { Ok(default) }
    }

    /// `get_bool`, or `default` when the key is missing.
    pub fn get_bool_or(&self, key: &str, default: bool) -> Result<bool> {
        if self.has(key) { self.get_bool(key) } else { Ok(default) }
    }

    /// A file path from the config, ready to open. wasm: unchanged (the sandbox sees
    /// only the directories its manifest grants, under their guest names). Native: a
    /// relative path is taken relative to the directory of the plugin's shared library,
    /// so a manifest can name files next to it whatever the host's working directory.
    pub fn get_path(&self, key: &str) -> Result<std::path::PathBuf> {
        let path = std::path::PathBuf::from(self.get_string(key)?);
        if path.is_relative() {
            if let Some(dir) = rt::library_dir() {
                return Ok(dir.join(path));
            }
        }
        Ok(path)
    }
}

/// Who an auth plugin recognised.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Identity {
    pub subject: String,
    pub roles: Vec<String>,
    pub claims: Vec<(String, Value)>,
}

impl Identity {
    pub fn new(subject: impl Into<String>) -> Identity {
        Identity { subject: subject.into(), ..Identity::default() }
    }

    /// The identity JSON of the ABI: `{"subject", "roles", "claims"}`.
    pub fn to_json(&self) -> String {
        Value::Object(vec![
            ("subject".into(), Value::String(self.subject.clone())),
            ("roles".into(), Value::Array(self.roles.iter().cloned().map(Value::String).collect())),
            ("claims".into(), Value::Object(self.claims.clone())),
        ])
        .to_json()
    }

    /// Parse the identity JSON the host passes to `authorize`.
    pub fn from_json(bytes: &[u8]) -> Result<Identity> {
        let config = Config::parse(bytes)?;
        let subject = config.get_string("subject")?;
        let roles = match config.get("roles") {
            Some(Value::Array(items)) => items.iter().filter_map(|r| r.as_str().map(String::from)).collect(),
            _ => Vec::new(),
        };
        let claims = match config.get("claims") {
            Some(Value::Object(members)) => members.clone(),
            _ => Vec::new(),
        };
        Ok(Identity { subject, roles, claims })
    }
}

/// A vectorizer: text in, one vector out.
pub trait VectorizerPlugin {
    /// Read the config and load the model; called once before any other hook.
    fn init(&mut self, config: Config) -> Result<()>;
    /// The vector of one text. Every vector must have the same length.
    fn vectorize_text(&self, text: &str) -> Result<Vec<f32>>;
    /// The vectors of a batch (one call across the boundary); defaults to a loop.
    fn vectorize_batch(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        texts.iter().map(|t| self.vectorize_text(t)).collect()
    }
}

/// A transformer: text to text.
pub trait TransformerPlugin {
    fn init(&mut self, config: Config) -> Result<()>;
    fn transform(&self, text: &str) -> Result<String>;
    /// Defaults to a loop over `transform`.
    fn transform_batch(&self, texts: &[&str]) -> Result<Vec<String>> {
        texts.iter().map(|t| self.transform(t)).collect()
    }
}

/// A reranker: one score per document, in input order (higher ranks higher).
pub trait RerankerPlugin {
    fn init(&mut self, config: Config) -> Result<()>;
    fn rerank(&self, query: &str, documents: &[&str]) -> Result<Vec<f32>>;
}

/// A generator. `options` holds the call's options (max_tokens, temperature, ...).
pub trait GeneratorPlugin {
    fn init(&mut self, config: Config) -> Result<()>;
    fn generate(&self, prompt: &str, options: &Config) -> Result<String>;
    /// Produce the answer chunk by chunk through `emit`, which returns `false` when the
    /// caller stopped listening (then return promptly). Defaults to one chunk.
    fn generate_stream(
        &self,
        prompt: &str,
        options: &Config,
        emit: &mut dyn FnMut(&str) -> bool,
    ) -> Result<()> {
        let answer = self.generate(prompt, options)?;
        if !answer.is_empty() {
            emit(&answer);
        }
        Ok(())
    }
}

/// A key-value store: UTF-8 keys, byte values.
pub trait StoragePlugin {
    fn init(&mut self, config: Config) -> Result<()>;
    fn store(&mut self, key: &str, data: &[u8]) -> Result<()>;
    /// `None` when there is no such key.
    fn retrieve(&mut self, key: &str) -> Result<Option<Vec<u8>>>;
    /// `true` if the key existed.
    fn delete(&mut self, key: &str) -> Result<bool>;
}

/// Authentication and (optionally) authorization.
pub trait AuthPlugin {
    fn init(&mut self, config: Config) -> Result<()>;
    /// `Ok(None)`: not this plugin's kind of credentials; `Err(Error::denied(..))`:
    /// its kind, and wrong.
    fn authenticate(&self, credentials: &Config) -> Result<Option<Identity>>;
    /// `Some(true)` allow, `Some(false)` deny, `None` no opinion (the default).
    fn authorize(&self, _identity: &Identity, _resource: &str, _action: &str) -> Result<Option<bool>> {
        Ok(None)
    }
}

/// Send one chunk of a streamed answer to the host (what `generate_stream`'s `emit`
/// does); `false` when the caller stopped listening.
pub fn emit(chunk: &str) -> bool {
    rt::emit(chunk.as_bytes()) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_getters() {
        let c = Config::parse(br#"{"modelPath": "/model/m.bin", "n": 3, "x": 1.5, "on": true,
            "nested": {"a": [1, "two", null]}, "esc": "a\"\\\n\u00e9\ud83d\udd11", "nil": null}"#)
            .unwrap();
        assert_eq!(c.get_string("modelPath").unwrap(), "/model/m.bin");
        assert_eq!(c.get_i64("n").unwrap(), 3);
        assert_eq!(c.get_f64("x").unwrap(), 1.5);
        assert!(c.get_bool("on").unwrap());
        assert_eq!(c.get_string("esc").unwrap(), "a\"\\\né🔑");
        assert_eq!(c.get_string("missing").unwrap_err().message, "config.missing is missing");
        assert_eq!(c.get_string("n").unwrap_err().status, status::INVALID);
        assert!(c.get_i64("x").is_err());
        assert_eq!(c.get_string_or("nil", "d").unwrap(), "d");
        assert_eq!(c.get_i64_or("absent", 7).unwrap(), 7);
        let nested = c.get("nested").unwrap().get("a").unwrap().as_array().unwrap();
        assert_eq!(nested[1].as_str(), Some("two"));
        assert_eq!(nested[2], Value::Null);
        assert_eq!(Config::parse(b"").unwrap(), Config::default());
        assert!(Config::parse(b"[1]").is_err());
        assert!(Config::parse(b"{\"a\": }").is_err());
        assert!(Config::parse(b"{\"a\": 1} x").is_err());
    }

    #[test]
    fn json_round_trip() {
        let text = r#"{"s":"q\"\\\n\u0001é","a":[true,false,null,1.5,-2],"o":{}}"#;
        let v = Value::parse(text).unwrap();
        assert_eq!(Value::parse(&v.to_json()).unwrap(), v);
        assert_eq!(v.get("s").unwrap().as_str(), Some("q\"\\\n\u{1}é"));
    }

    #[test]
    fn identity_json() {
        let mut who = Identity::new("bot \"1\"");
        who.roles = vec!["reader".into()];
        who.claims = vec![("k".into(), Value::Number(1.0))];
        assert_eq!(Identity::from_json(who.to_json().as_bytes()).unwrap(), who);
    }

    #[test]
    fn packed_strings_and_vectors() {
        let packed = rt::pack_strings(&["a", "", "héllo"]);
        let texts = unsafe { rt::texts(packed.as_ptr(), packed.len() as u32, 3) }.unwrap();
        assert_eq!(texts, vec!["a", "", "héllo"]);
        assert!(unsafe { rt::texts(packed.as_ptr(), packed.len() as u32, 4) }.is_err());
        assert_eq!(rt::pack_vectors(&[vec![1.0, 2.0]], 1).unwrap().len(), 8);
        assert!(rt::pack_vectors(&[vec![1.0], vec![1.0, 2.0]], 2).is_err());
    }

    #[test]
    fn errors_and_panics_become_statuses() {
        assert_eq!(rt::guard(|| Err(Error::denied("no"))), status::DENIED);
        assert_eq!(rt::guard(|| Ok(1)), 1);
        assert_eq!(rt::guard(|| panic!("boom")), status::ERROR);
    }
}
