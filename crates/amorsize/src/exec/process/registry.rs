//! Functions a worker can run, by name. The parent and the worker are the same executable, so
//! the same `register` calls run in both before [`init`](super::init); a name therefore means
//! the same function on both sides of the pipe.

use super::wire::{self, FailureKind, ItemFailure};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::any::TypeId;
use std::collections::HashMap;
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex, OnceLock};

/// A function registered for worker processes: its name on the wire and its body, which the
/// parent also calls directly (in the sample and on the serial path).
///
/// Get one from [`register`](super::register). It is `Copy`, so pass it around freely.
pub struct Function<T, R> {
    name: &'static str,
    f: fn(&T) -> R,
}

impl<T, R> Function<T, R> {
    /// The name the function is registered under.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Calls the function in this process.
    pub fn call(&self, item: &T) -> R {
        (self.f)(item)
    }
}

impl<T, R> Clone for Function<T, R> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T, R> Copy for Function<T, R> {}

impl<T, R> fmt::Debug for Function<T, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Function")
            .field("name", &self.name)
            .finish()
    }
}

/// Runs one item: decodes it from the front of `input` (advancing it), calls the function and
/// appends the slot (tag and result, or tag and failure) to `out`.
type Call = dyn Fn(usize, &mut &[u8], &mut Vec<u8>) -> Result<(), String> + Send + Sync;

struct Entry {
    types: (TypeId, TypeId),
    type_names: (&'static str, &'static str),
    call: Arc<Call>,
}

fn table() -> &'static Mutex<HashMap<&'static str, Entry>> {
    static TABLE: OnceLock<Mutex<HashMap<&'static str, Entry>>> = OnceLock::new();
    TABLE.get_or_init(Default::default)
}

/// Registers `f` under `name` for worker processes and returns its handle.
///
/// Call it at the top of `main`, before [`init`](super::init), so that workers (this
/// executable started again in worker mode) know the name too. Registering the same name again
/// with the same types returns a handle on the first registration.
///
/// # Panics
///
/// If `name` is already registered with other item or result types: one name must mean one
/// function in every process.
///
/// # Examples
///
/// ```
/// use amorsize::exec::process;
///
/// fn square(x: &u64) -> u64 {
///     x * x
/// }
///
/// let square = process::register("square", square);
/// assert_eq!(square.name(), "square");
/// assert_eq!(square.call(&7), 49);
/// ```
pub fn register<T, R>(name: &'static str, f: fn(&T) -> R) -> Function<T, R>
where
    T: DeserializeOwned + 'static,
    R: Serialize + 'static,
{
    let types = (TypeId::of::<T>(), TypeId::of::<R>());
    let type_names = (std::any::type_name::<T>(), std::any::type_name::<R>());
    let mut table = table().lock().unwrap_or_else(|e| e.into_inner());
    if let Some(entry) = table.get(name) {
        assert!(
            entry.types == types,
            "amorsize: the process function {name:?} is registered as fn(&{}) -> {} and again as fn(&{}) -> {}; give each function its own name",
            entry.type_names.0,
            entry.type_names.1,
            type_names.0,
            type_names.1,
        );
        return Function { name, f };
    }
    let call =
        move |index: usize, input: &mut &[u8], out: &mut Vec<u8>| run_one(f, index, input, out);
    table.insert(
        name,
        Entry {
            types,
            type_names,
            call: Arc::new(call),
        },
    );
    Function { name, f }
}

/// The worker side of a registered function, by name.
pub(crate) fn lookup(name: &str) -> Option<Arc<Call>> {
    let table = table().lock().unwrap_or_else(|e| e.into_inner());
    table.get(name).map(|e| Arc::clone(&e.call))
}

/// Decodes item `index`, runs `f` on it catching a panic, and appends its slot. An error is
/// returned only when the rest of the chunk cannot be decoded (the item's bytes are unusable,
/// so the position of the next item is unknown).
fn run_one<T, R>(
    f: fn(&T) -> R,
    index: usize,
    input: &mut &[u8],
    out: &mut Vec<u8>,
) -> Result<(), String>
where
    T: DeserializeOwned,
    R: Serialize,
{
    let item: T = match postcard::take_from_bytes(input) {
        Ok((item, rest)) => {
            *input = rest;
            item
        }
        Err(e) => {
            return Err(format!(
                "item {index} could not be decoded as {} in the worker: {e}",
                std::any::type_name::<T>()
            ))
        }
    };
    let failure = match catch_unwind(AssertUnwindSafe(|| f(&item))) {
        Ok(result) => {
            out.push(wire::SLOT_OK);
            match wire::encode_into(&result, out) {
                Ok(()) => return Ok(()),
                Err(e) => {
                    out.pop();
                    ItemFailure {
                        kind: FailureKind::Serialization,
                        message: format!(
                            "the result of item {index} could not be serialized as {}: {e}",
                            std::any::type_name::<R>()
                        ),
                    }
                }
            }
        }
        Err(payload) => ItemFailure {
            kind: FailureKind::Panicked,
            message: format!(
                "the function panicked on item {index}: {}",
                crate::error::panic_message(payload.as_ref())
            ),
        },
    };
    out.push(wire::SLOT_FAILED);
    wire::encode_into(&failure, out).map_err(|e| e.to_string())
}
