//! What the export macros expand to call: memory, errors, outputs, packed strings and
//! the host's emit function. Not a stable API; use the traits and macros instead.

use crate::{Error, Result};
use std::alloc::{alloc, dealloc, Layout};
use std::panic::{catch_unwind, AssertUnwindSafe};

static mut LAST_ERROR: Vec<u8> = Vec::new();
static mut OUTPUT: Vec<u8> = Vec::new();

/// `wv_alloc`: 8-byte aligned, NULL when out of memory.
pub unsafe fn alloc_buffer(size: u32) -> *mut u8 {
    match Layout::from_size_align((size as usize).max(1), 8) {
        Ok(layout) => alloc(layout),
        Err(_) => std::ptr::null_mut(),
    }
}

/// `wv_free` of a buffer from `alloc_buffer(size)`.
pub unsafe fn free_buffer(ptr: *mut u8, size: u32) {
    if !ptr.is_null() {
        dealloc(ptr, Layout::from_size_align_unchecked((size as usize).max(1), 8));
    }
}

/// `wv_last_error`.
pub unsafe fn last_error(msg_ptr: *mut *const u8, msg_len: *mut u32) {
    *msg_ptr = LAST_ERROR.as_ptr();
    *msg_len = LAST_ERROR.len() as u32;
}

/// Record `err` for `wv_last_error`; its (negative) status.
pub fn fail(err: Error) -> i32 {
    unsafe {
        LAST_ERROR.clear();
        LAST_ERROR.extend_from_slice(err.message.as_bytes());
    }
    if err.status < 0 {
        err.status
    } else {
        crate::status::ERROR
    }
}

/// Run a hook: its status, or the status of its error or panic.
pub fn guard<F: FnOnce() -> Result<i32>>(hook: F) -> i32 {
    match catch_unwind(AssertUnwindSafe(hook)) {
        Ok(Ok(status)) => status,
        Ok(Err(err)) => fail(err),
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic".to_string());
            fail(Error::new(format!("the plugin panicked: {}", what)))
        }
    }
}

/// The plugin, or an error before `wv_init` succeeded.
pub fn initialised<T>(plugin: Option<&mut T>) -> Result<&mut T> {
    plugin.ok_or_else(|| Error::new("the plugin is not initialised (wv_init failed or was not called)"))
}

/// An input buffer.
pub unsafe fn bytes<'a>(ptr: *const u8, len: u32) -> &'a [u8] {
    if ptr.is_null() || len == 0 {
        &[]
    } else {
        std::slice::from_raw_parts(ptr, len as usize)
    }
}

/// An input string (UTF-8).
pub unsafe fn text<'a>(ptr: *const u8, len: u32, what: &str) -> Result<&'a str> {
    std::str::from_utf8(bytes(ptr, len)).map_err(|_| Error::invalid(format!("{} is not UTF-8", what)))
}

/// `count` packed strings (u32le length + bytes each).
pub unsafe fn texts<'a>(ptr: *const u8, len: u32, count: u32) -> Result<Vec<&'a str>> {
    let data = bytes(ptr, len);
    let mut out = Vec::with_capacity(count as usize);
    let mut pos = 0usize;
    for i in 0..count {
        if data.len() - pos < 4 {
            return Err(Error::invalid(format!("{} texts announced, {} sent", count, i)));
        }
        let n = u32::from_le_bytes([data[pos], data[pos + 1], data[pos + 2], data[pos + 3]]) as usize;
        pos += 4;
        if data.len() - pos < n {
            return Err(Error::invalid("truncated packed string"));
        }
        let s = std::str::from_utf8(&data[pos..pos + n])
            .map_err(|_| Error::invalid(format!("text {} is not UTF-8", i)))?;
        out.push(s);
        pos += n;
    }
    Ok(out)
}

/// The texts of `wv_vectorize_into`: `count` UTF-8 texts joined by the byte 0xFF
/// (which no UTF-8 text contains).
pub unsafe fn joined_texts<'a>(ptr: *const u8, len: u32, count: u32) -> Result<Vec<&'a str>> {
    let data = bytes(ptr, len);
    let mut out = Vec::with_capacity(count as usize);
    if count == 0 {
        return if data.is_empty() { Ok(out) } else { Err(Error::invalid("0 texts announced, some sent")) };
    }
    for (i, part) in data.split(|&b| b == 0xFF).enumerate() {
        if i as u32 >= count {
            return Err(Error::invalid(format!("more than the {} texts announced", count)));
        }
        let s = std::str::from_utf8(part).map_err(|_| Error::invalid(format!("text {} is not UTF-8", i)))?;
        out.push(s);
    }
    if out.len() != count as usize {
        return Err(Error::invalid(format!("{} texts announced, {} sent", count, out.len())));
    }
    Ok(out)
}

/// Write `count` vectors into the host's buffer of `out_floats` floats
/// (`wv_vectorize_into`): each must have `out_floats / count` dimensions.
pub unsafe fn write_vectors(vectors: &[Vec<f32>], count: u32, out: *mut f32, out_floats: u32) -> Result<i32> {
    if vectors.len() != count as usize {
        return Err(Error::new(format!("returned {} vectors for {} texts", vectors.len(), count)));
    }
    if count == 0 {
        return Ok(crate::status::OK);
    }
    let dims = out_floats as usize / count as usize;
    if dims * count as usize != out_floats as usize || out.is_null() {
        return Err(Error::invalid(format!("{} floats do not hold {} vectors", out_floats, count)));
    }
    let dst = std::slice::from_raw_parts_mut(out, out_floats as usize);
    for (i, v) in vectors.iter().enumerate() {
        if v.len() != dims {
            return Err(Error::new(format!("vector {} has {} dimensions, the host expects {}", i, v.len(), dims)));
        }
        dst[i * dims..(i + 1) * dims].copy_from_slice(v);
    }
    Ok(crate::status::OK)
}

/// Hand `data` to the host as the output (valid until the next call).
pub unsafe fn output(data: Vec<u8>, out_ptr: *mut *const u8, out_len: *mut u32) -> Result<i32> {
    if data.len() > u32::MAX as usize {
        return Err(Error::no_memory("output larger than 4 GiB"));
    }
    OUTPUT = data;
    *out_ptr = OUTPUT.as_ptr();
    *out_len = OUTPUT.len() as u32;
    Ok(crate::status::OK)
}

/// Pack vectors as little-endian float32, rows of equal length.
pub fn pack_vectors(vectors: &[Vec<f32>], count: u32) -> Result<Vec<u8>> {
    if vectors.len() != count as usize {
        return Err(Error::new(format!("returned {} vectors for {} texts", vectors.len(), count)));
    }
    let dims = vectors.first().map(|v| v.len()).unwrap_or(0);
    if dims == 0 {
        return Err(Error::new("returned an empty vector"));
    }
    let mut out = Vec::with_capacity(vectors.len() * dims * 4);
    for (i, v) in vectors.iter().enumerate() {
        if v.len() != dims {
            return Err(Error::new(format!("vector {} has {} dimensions, vector 0 has {}", i, v.len(), dims)));
        }
        for x in v {
            out.extend_from_slice(&x.to_le_bytes());
        }
    }
    Ok(out)
}

/// Packed strings.
pub fn pack_strings<S: AsRef<str>>(items: &[S]) -> Vec<u8> {
    let mut out = Vec::new();
    for s in items {
        let b = s.as_ref().as_bytes();
        out.extend_from_slice(&(b.len() as u32).to_le_bytes());
        out.extend_from_slice(b);
    }
    out
}

#[cfg(target_arch = "wasm32")]
#[link(wasm_import_module = "weaviate")]
extern "C" {
    #[link_name = "wv_emit"]
    fn host_emit(chunk: *const u8, len: u32) -> i32;
}

/// The host's emit function (native: set through `wv_set_emit`).
#[cfg(not(target_arch = "wasm32"))]
pub static mut EMIT: Option<extern "C" fn(*const u8, u32) -> i32> = None;

/// Send one chunk to the host: 0 to continue, non-zero when the caller stopped.
pub fn emit(chunk: &[u8]) -> i32 {
    #[cfg(target_arch = "wasm32")]
    unsafe {
        host_emit(chunk.as_ptr(), chunk.len() as u32)
    }
    #[cfg(not(target_arch = "wasm32"))]
    unsafe {
        match EMIT {
            Some(f) => f(chunk.as_ptr(), chunk.len() as u32),
            None => 1,
        }
    }
}

/// The directory of the shared library this code is in (native builds), found with
/// `dladdr` on one of its own functions; `None` on wasm or when it cannot be told.
#[cfg(not(target_arch = "wasm32"))]
pub fn library_dir() -> Option<std::path::PathBuf> {
    use std::os::raw::{c_char, c_int, c_void};
    #[repr(C)]
    struct DlInfo {
        dli_fname: *const c_char,
        dli_fbase: *mut c_void,
        dli_sname: *const c_char,
        dli_saddr: *mut c_void,
    }
    extern "C" {
        fn dladdr(addr: *const c_void, info: *mut DlInfo) -> c_int;
    }
    let mut info = DlInfo {
        dli_fname: std::ptr::null(),
        dli_fbase: std::ptr::null_mut(),
        dli_sname: std::ptr::null(),
        dli_saddr: std::ptr::null_mut(),
    };
    let found = unsafe { dladdr(library_dir as *const c_void, &mut info) };
    if found == 0 || info.dli_fname.is_null() {
        return None;
    }
    let file = unsafe { std::ffi::CStr::from_ptr(info.dli_fname) };
    let file = std::path::PathBuf::from(file.to_string_lossy().into_owned());
    file.parent().map(|dir| dir.to_path_buf())
}

/// wasm: paths are the guest's; there is no library directory.
#[cfg(target_arch = "wasm32")]
pub fn library_dir() -> Option<std::path::PathBuf> {
    None
}

/// The exports every plugin has, the plugin's slot and `wv_init`.
#[doc(hidden)]
#[macro_export]
macro_rules! __wv_common_exports {
    ($ty:ty, $tr:path) => {
        static mut __WV_PLUGIN: ::core::option::Option<$ty> = ::core::option::Option::None;

        #[allow(dead_code)]
        fn __wv_plugin() -> $crate::Result<&'static mut $ty> {
            $crate::rt::initialised(unsafe { __WV_PLUGIN.as_mut() })
        }

        #[no_mangle]
        pub extern "C" fn wv_abi_version() -> u32 {
            $crate::ABI_VERSION
        }

        #[no_mangle]
        pub unsafe extern "C" fn wv_alloc(size: u32) -> *mut u8 {
            $crate::rt::alloc_buffer(size)
        }

        #[no_mangle]
        pub unsafe extern "C" fn wv_free(ptr: *mut u8, size: u32) {
            $crate::rt::free_buffer(ptr, size)
        }

        #[no_mangle]
        pub unsafe extern "C" fn wv_last_error(msg_ptr: *mut *const u8, msg_len: *mut u32) {
            $crate::rt::last_error(msg_ptr, msg_len)
        }

        #[no_mangle]
        pub unsafe extern "C" fn wv_init(config: *const u8, config_len: u32) -> i32 {
            $crate::rt::guard(|| {
                let config = $crate::Config::parse($crate::rt::bytes(config, config_len))?;
                let mut plugin: $ty = ::core::default::Default::default();
                <$ty as $tr>::init(&mut plugin, config)?;
                __WV_PLUGIN = ::core::option::Option::Some(plugin);
                Ok($crate::status::OK)
            })
        }
    };
}

/// Export a [`VectorizerPlugin`](crate::VectorizerPlugin): `export_vectorizer!(MyVectorizer);`
#[macro_export]
macro_rules! export_vectorizer {
    ($ty:ty) => {
        $crate::__wv_common_exports!($ty, $crate::VectorizerPlugin);

        #[no_mangle]
        pub unsafe extern "C" fn wv_vectorize_batch(
            texts: *const u8,
            texts_len: u32,
            count: u32,
            out_ptr: *mut *const u8,
            out_len: *mut u32,
        ) -> i32 {
            $crate::rt::guard(|| {
                let plugin = __wv_plugin()?;
                let texts = $crate::rt::texts(texts, texts_len, count)?;
                let vectors = <$ty as $crate::VectorizerPlugin>::vectorize_batch(plugin, &texts)?;
                $crate::rt::output($crate::rt::pack_vectors(&vectors, count)?, out_ptr, out_len)
            })
        }

        #[no_mangle]
        pub unsafe extern "C" fn wv_vectorize_into(
            texts: *const u8,
            texts_len: u32,
            count: u32,
            out: *mut f32,
            out_floats: u32,
        ) -> i32 {
            $crate::rt::guard(|| {
                let plugin = __wv_plugin()?;
                let texts = $crate::rt::joined_texts(texts, texts_len, count)?;
                let vectors = <$ty as $crate::VectorizerPlugin>::vectorize_batch(plugin, &texts)?;
                $crate::rt::write_vectors(&vectors, count, out, out_floats)
            })
        }
    };
}

/// Export a [`TransformerPlugin`](crate::TransformerPlugin).
#[macro_export]
macro_rules! export_transformer {
    ($ty:ty) => {
        $crate::__wv_common_exports!($ty, $crate::TransformerPlugin);

        #[no_mangle]
        pub unsafe extern "C" fn wv_transform(
            text: *const u8,
            len: u32,
            out_ptr: *mut *const u8,
            out_len: *mut u32,
        ) -> i32 {
            $crate::rt::guard(|| {
                let plugin = __wv_plugin()?;
                let text = $crate::rt::text(text, len, "the text")?;
                let out = <$ty as $crate::TransformerPlugin>::transform(plugin, text)?;
                $crate::rt::output(out.into_bytes(), out_ptr, out_len)
            })
        }

        #[no_mangle]
        pub unsafe extern "C" fn wv_transform_batch(
            texts: *const u8,
            texts_len: u32,
            count: u32,
            out_ptr: *mut *const u8,
            out_len: *mut u32,
        ) -> i32 {
            $crate::rt::guard(|| {
                let plugin = __wv_plugin()?;
                let texts = $crate::rt::texts(texts, texts_len, count)?;
                let out = <$ty as $crate::TransformerPlugin>::transform_batch(plugin, &texts)?;
                if out.len() != texts.len() {
                    return Err($crate::Error::new("transform_batch returned a different count"));
                }
                $crate::rt::output($crate::rt::pack_strings(&out), out_ptr, out_len)
            })
        }
    };
}

/// Export a [`RerankerPlugin`](crate::RerankerPlugin).
#[macro_export]
macro_rules! export_reranker {
    ($ty:ty) => {
        $crate::__wv_common_exports!($ty, $crate::RerankerPlugin);

        #[no_mangle]
        pub unsafe extern "C" fn wv_rerank(
            query: *const u8,
            query_len: u32,
            docs: *const u8,
            docs_len: u32,
            count: u32,
            out_ptr: *mut *const u8,
            out_len: *mut u32,
        ) -> i32 {
            $crate::rt::guard(|| {
                let plugin = __wv_plugin()?;
                let query = $crate::rt::text(query, query_len, "the query")?;
                let docs = $crate::rt::texts(docs, docs_len, count)?;
                let scores = <$ty as $crate::RerankerPlugin>::rerank(plugin, query, &docs)?;
                if scores.len() != docs.len() {
                    return Err($crate::Error::new(format!(
                        "rerank returned {} scores for {} documents",
                        scores.len(),
                        docs.len()
                    )));
                }
                let bytes: Vec<u8> = scores.iter().flat_map(|s| s.to_le_bytes()).collect();
                $crate::rt::output(bytes, out_ptr, out_len)
            })
        }
    };
}

/// Export a [`GeneratorPlugin`](crate::GeneratorPlugin) (streaming through `wv_emit`).
#[macro_export]
macro_rules! export_generator {
    ($ty:ty) => {
        $crate::__wv_common_exports!($ty, $crate::GeneratorPlugin);

        #[no_mangle]
        pub unsafe extern "C" fn wv_generate(
            prompt: *const u8,
            prompt_len: u32,
            options: *const u8,
            options_len: u32,
            out_ptr: *mut *const u8,
            out_len: *mut u32,
        ) -> i32 {
            $crate::rt::guard(|| {
                let plugin = __wv_plugin()?;
                let prompt = $crate::rt::text(prompt, prompt_len, "the prompt")?;
                let options = $crate::Config::parse($crate::rt::bytes(options, options_len))?;
                let out = <$ty as $crate::GeneratorPlugin>::generate(plugin, prompt, &options)?;
                $crate::rt::output(out.into_bytes(), out_ptr, out_len)
            })
        }

        #[no_mangle]
        pub unsafe extern "C" fn wv_generate_stream(
            prompt: *const u8,
            prompt_len: u32,
            options: *const u8,
            options_len: u32,
        ) -> i32 {
            $crate::rt::guard(|| {
                let plugin = __wv_plugin()?;
                let prompt = $crate::rt::text(prompt, prompt_len, "the prompt")?;
                let options = $crate::Config::parse($crate::rt::bytes(options, options_len))?;
                let mut listening = true;
                let mut emit = |chunk: &str| {
                    listening = listening && $crate::emit(chunk);
                    listening
                };
                <$ty as $crate::GeneratorPlugin>::generate_stream(plugin, prompt, &options, &mut emit)?;
                Ok($crate::status::OK)
            })
        }

        #[cfg(not(target_arch = "wasm32"))]
        #[no_mangle]
        pub unsafe extern "C" fn wv_set_emit(emit: Option<extern "C" fn(*const u8, u32) -> i32>) {
            $crate::rt::EMIT = emit;
        }
    };
}

/// Export a [`StoragePlugin`](crate::StoragePlugin).
#[macro_export]
macro_rules! export_storage {
    ($ty:ty) => {
        $crate::__wv_common_exports!($ty, $crate::StoragePlugin);

        #[no_mangle]
        pub unsafe extern "C" fn wv_store(key: *const u8, key_len: u32, data: *const u8, data_len: u32) -> i32 {
            $crate::rt::guard(|| {
                let plugin = __wv_plugin()?;
                let key = $crate::rt::text(key, key_len, "the key")?;
                <$ty as $crate::StoragePlugin>::store(plugin, key, $crate::rt::bytes(data, data_len))?;
                Ok($crate::status::OK)
            })
        }

        #[no_mangle]
        pub unsafe extern "C" fn wv_retrieve(
            key: *const u8,
            key_len: u32,
            out_ptr: *mut *const u8,
            out_len: *mut u32,
        ) -> i32 {
            $crate::rt::guard(|| {
                let plugin = __wv_plugin()?;
                let key = $crate::rt::text(key, key_len, "the key")?;
                match <$ty as $crate::StoragePlugin>::retrieve(plugin, key)? {
                    Some(data) => $crate::rt::output(data, out_ptr, out_len),
                    None => Ok($crate::status::NOT_FOUND),
                }
            })
        }

        #[no_mangle]
        pub unsafe extern "C" fn wv_delete(key: *const u8, key_len: u32) -> i32 {
            $crate::rt::guard(|| {
                let plugin = __wv_plugin()?;
                let key = $crate::rt::text(key, key_len, "the key")?;
                Ok(<$ty as $crate::StoragePlugin>::delete(plugin, key)? as i32)
            })
        }
    };
}

/// Export an [`AuthPlugin`](crate::AuthPlugin).
#[macro_export]
macro_rules! export_auth {
    ($ty:ty) => {
        $crate::__wv_common_exports!($ty, $crate::AuthPlugin);

        #[no_mangle]
        pub unsafe extern "C" fn wv_authenticate(
            credentials: *const u8,
            len: u32,
            out_ptr: *mut *const u8,
            out_len: *mut u32,
        ) -> i32 {
            $crate::rt::guard(|| {
                let plugin = __wv_plugin()?;
                let credentials = $crate::Config::parse($crate::rt::bytes(credentials, len))?;
                match <$ty as $crate::AuthPlugin>::authenticate(plugin, &credentials)? {
                    Some(identity) => $crate::rt::output(identity.to_json().into_bytes(), out_ptr, out_len),
                    None => Ok($crate::status::NOT_FOUND),
                }
            })
        }

        #[no_mangle]
        pub unsafe extern "C" fn wv_authorize(
            identity: *const u8,
            identity_len: u32,
            resource: *const u8,
            resource_len: u32,
            action: *const u8,
            action_len: u32,
        ) -> i32 {
            $crate::rt::guard(|| {
                let plugin = __wv_plugin()?;
                let identity = $crate::Identity::from_json($crate::rt::bytes(identity, identity_len))?;
                let resource = $crate::rt::text(resource, resource_len, "the resource")?;
                let action = $crate::rt::text(action, action_len, "the action")?;
                Ok(match <$ty as $crate::AuthPlugin>::authorize(plugin, &identity, resource, action)? {
                    Some(true) => 1,
                    Some(false) => 0,
                    None => $crate::status::ABSTAIN,
                })
            })
        }
    };
}
