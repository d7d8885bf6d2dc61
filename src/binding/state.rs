//! Aggregate states whose life does not depend on the host calling `destroy`.
//!
//! DuckDB owns the memory of an aggregate state and, depending on how the
//! aggregate is called (GROUP BY, window frames, ORDER BY inside the call,
//! DISTINCT), may combine one source into several targets, finalize a state
//! more than once, copy a state's bytes, or free the memory without calling
//! `destroy` at all (DuckDB 1.5.6 after an error in `update` or `finalize`;
//! DuckDB 2.0.0 after GROUP BY and window frames). So the memory DuckDB
//! gives us holds only a tag and a number ([`Slot`]), and the Rust state
//! lives in a registry here, under that number, with the address `init` saw.
//!
//! The registry holds **live states only**, and forgets a state as soon as
//! its outcome is decided, whichever callback comes first:
//! - `combine` and `finalize` move the state out and forget it (no
//!   tombstone): a second finalize or combine of the same memory (window
//!   frames) finds no live state and is refused with a clear SQL error;
//! - `destroy` forgets it, and a second `destroy` (or one of copied bytes)
//!   finds nothing;
//! - a callback that fails forgets **every state of its call** (states
//!   record the call they belong to, [`CallKey`], with their first rows): the
//!   statement fails, and DuckDB may free their memory without `destroy`;
//! - `init` on an address the registry still holds means DuckDB freed that
//!   memory without `destroy` and reuses it: the old state is forgotten.
//!
//! A pointer is read only if the registry holds it as the address of a live
//! state, and the memory there still carries that state's tag and number
//! ([`known`]); a live state never takes rows of another call
//! ([`Slot::with`]). [`counts`] reports the registry's size
//! (`ecoreco_debug_state_counts()` in SQL), which the forms-matrix test
//! checks is back to its size before every statement.

use std::any::Any;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

/// What DuckDB's state memory holds.
#[repr(C)]
pub(crate) struct Slot {
    tag: u64,
    id: u64,
}

const TAG: u64 = 0xEC0_BEC0_5A7E_0002;

/// Which call a state belongs to (a digest of the call's arguments).
pub(crate) type CallKey = u64;

/// A registered state: the aggregate's own state plus the call's settings.
pub(crate) struct Entry<S, A> {
    pub state: S,
    pub call: Option<A>,
}

enum Held {
    /// Initialised, no rows yet.
    Empty,
    /// A state with rows, of call `call`.
    Live {
        entry: Box<dyn Any + Send>,
        call: CallKey,
    },
    /// Lent to a callback running now; `forget` set if its call failed
    /// meanwhile (the state is dropped when it comes back).
    Busy { call: Option<CallKey>, forget: bool },
}

struct Record {
    address: usize,
    held: Held,
}

impl Record {
    fn call(&self) -> Option<CallKey> {
        match &self.held {
            Held::Empty => None,
            Held::Live { call, .. } => Some(*call),
            Held::Busy { call, .. } => *call,
        }
    }
}

#[derive(Default)]
struct Registry {
    states: HashMap<u64, Record>,
    /// Address of every live state → its number.
    addresses: HashMap<usize, u64>,
}

impl Registry {
    /// Removes state `id` (and its address); what it held, to drop outside
    /// the lock.
    fn remove(&mut self, id: u64) -> Option<Held> {
        let record = self.states.remove(&id)?;
        if self.addresses.get(&record.address) == Some(&id) {
            self.addresses.remove(&record.address);
        }
        Some(record.held)
    }
}

fn registry() -> std::sync::MutexGuard<'static, Registry> {
    static REGISTRY: OnceLock<Mutex<Registry>> = OnceLock::new();
    crate::threads::lock(REGISTRY.get_or_init(Default::default))
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// Drops what a forgotten state held. Dropping a state runs stage code: it
/// must not unwind into DuckDB.
fn discard(held: impl IntoIterator<Item = Held>) {
    for held in held {
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(held)));
    }
}

/// The state at `address`, if it is the address of a live state (one that
/// `init` initialised and no callback has moved out, destroyed or forgotten
/// since), and the memory there still carries that state's tag and number;
/// `None` for any other pointer, which is not read.
///
/// # Safety
/// An address the registry holds is the address of state memory DuckDB
/// handed to `init` and has not handed to `destroy`; DuckDB keeps such memory
/// allocated while the state is in use (a state whose memory DuckDB may free
/// without `destroy` is forgotten first, see the module documentation).
pub(crate) unsafe fn known<'a>(address: *mut u8) -> Option<&'a Slot> {
    let a = address as usize;
    let id = *registry().addresses.get(&a)?;
    // SAFETY: `a` is the address of live state memory of `size_of::<Slot>()`
    // bytes (see above), aligned as DuckDB aligns state memory (8 bytes).
    let slot = unsafe { &*(address as *const Slot) };
    (slot.tag == TAG && slot.id == id).then_some(slot)
}

/// The error for a pointer that is not a live state.
pub(crate) fn unknown_state(function: &str) -> anyhow::Error {
    crate::error::host(format!(
        "{function} was handed aggregate state memory that holds no live state of this call: a state already finalized \
         or combined (a window frame), or one state for all rows (ORDER BY inside the call, or a window over a whole \
         partition); call it as a plain aggregate, through its ecoreco.* macro"
    ))
}

impl Slot {
    /// Initialises state memory: a fresh number, an empty state (nothing is
    /// allocated for it until rows arrive).
    pub(crate) fn init(&mut self) {
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        self.tag = TAG;
        self.id = id;
        let address = self as *mut Slot as usize;
        let mut registry = registry();
        // DuckDB freed the memory of the state that was here without
        // `destroy`, and now reuses it: that state is gone.
        let stale = registry
            .addresses
            .insert(address, id)
            .and_then(|old| registry.states.remove(&old))
            .map(|record| record.held);
        registry.states.insert(
            id,
            Record {
                address,
                held: Held::Empty,
            },
        );
        drop(registry);
        discard(stale);
    }

    fn address(&self) -> usize {
        self as *const Slot as usize
    }

    /// Runs `body` on the live state of call `call` (created empty on first
    /// use). The state is lent to `body` without holding the registry's lock.
    pub(crate) fn with<S, A, R>(
        &self,
        function: &str,
        call: CallKey,
        body: impl FnOnce(&mut Entry<S, A>) -> anyhow::Result<R>,
    ) -> anyhow::Result<R>
    where
        S: Default + Send + 'static,
        A: Send + 'static,
    {
        let lent = {
            let mut registry = registry();
            let record = registry
                .states
                .get_mut(&self.id)
                .filter(|r| r.address == self.address())
                .ok_or_else(|| unknown_state(function))?;
            let lent = std::mem::replace(
                &mut record.held,
                Held::Busy {
                    call: Some(call),
                    forget: false,
                },
            );
            match lent {
                Held::Empty => Box::new(Entry::<S, A> {
                    state: S::default(),
                    call: None,
                }) as Box<dyn Any + Send>,
                Held::Live { entry, call: own } if own == call => entry,
                other => {
                    let error = match &other {
                        Held::Busy { .. } => crate::error::host(format!(
                            "{function}: one aggregate state was handed to two threads at once; call it as a plain \
                             aggregate, through its ecoreco.* macro"
                        )),
                        _ => crate::error::host(format!(
                            "{function} was handed the state of another call; call it as a plain aggregate, through \
                             its ecoreco.* macro"
                        )),
                    };
                    record.held = other;
                    return Err(error);
                }
            }
        };
        let mut lent = lent;
        let outcome = match lent.downcast_mut::<Entry<S, A>>() {
            Some(entry) => body(entry),
            None => Err(crate::error::host(format!(
                "{function} was handed the state of another aggregate"
            ))),
        };
        let mut registry = registry();
        let returned = match registry.states.get_mut(&self.id) {
            Some(record) => match record.held {
                Held::Busy { forget: false, .. } => {
                    record.held = Held::Live { entry: lent, call };
                    None
                }
                _ => {
                    drop(registry.remove(self.id));
                    Some(lent)
                }
            },
            // Forgotten meanwhile (its call failed on another thread).
            None => Some(lent),
        };
        drop(registry);
        if let Some(lent) = returned {
            discard([Held::Live { entry: lent, call }]);
        }
        outcome
    }

    /// Moves the state out and forgets it; `None` if it never had rows.
    pub(crate) fn take<S, A>(&self, function: &str) -> anyhow::Result<Option<Entry<S, A>>>
    where
        S: Send + 'static,
        A: Send + 'static,
    {
        let mut registry = registry();
        match registry.states.get(&self.id) {
            Some(record) if record.address == self.address() => {}
            _ => return Err(unknown_state(function)),
        }
        if let Some(Held::Busy { .. }) = registry.states.get(&self.id).map(|r| &r.held) {
            return Err(crate::error::host(format!(
                "{function}: one aggregate state was handed to two threads at once; call it as a plain aggregate, \
                 through its ecoreco.* macro"
            )));
        }
        let held = registry.remove(self.id);
        drop(registry);
        match held {
            Some(Held::Live { entry, .. }) => entry
                .downcast::<Entry<S, A>>()
                .map(|entry| Some(*entry))
                .map_err(|_| {
                    crate::error::host(format!(
                        "{function} was handed the state of another aggregate"
                    ))
                }),
            _ => Ok(None),
        }
    }

    /// The call this state's rows belong to, if it has rows.
    pub(crate) fn call(&self) -> Option<CallKey> {
        registry().states.get(&self.id).and_then(Record::call)
    }

    /// Forgets the state. Safe to call twice, and on copies: the second call
    /// finds nothing.
    pub(crate) fn destroy(&self) {
        let address = self.address();
        let mut registry = registry();
        let held = match registry.states.get(&self.id) {
            Some(record) if record.address == address => match record.held {
                // Lent to a callback: it drops the state when it returns.
                Held::Busy { .. } => {
                    if let Some(Held::Busy { forget, .. }) =
                        registry.states.get_mut(&self.id).map(|r| &mut r.held)
                    {
                        *forget = true;
                    }
                    None
                }
                _ => registry.remove(self.id),
            },
            _ => None,
        };
        drop(registry);
        discard(held);
    }

    pub(crate) fn same(&self, other: &Slot) -> bool {
        self.tag == other.tag && self.id == other.id
    }
}

/// Forgets every state of call `call` (it failed: DuckDB may free their
/// memory without `destroy`). States lent to a running callback are
/// dropped when it returns.
pub(crate) fn forget_call(call: CallKey) {
    let mut registry = registry();
    let ids: Vec<u64> = registry
        .states
        .iter()
        .filter(|(_, r)| r.call() == Some(call))
        .map(|(&id, _)| id)
        .collect();
    let mut dropped = Vec::new();
    for id in ids {
        match registry.states.get_mut(&id).map(|r| &mut r.held) {
            Some(Held::Busy { forget, .. }) => *forget = true,
            _ => dropped.extend(registry.remove(id)),
        }
    }
    drop(registry);
    discard(dropped);
}

/// How many states the registry holds and how many addresses it knows.
pub(crate) fn counts() -> (usize, usize) {
    let registry = registry();
    (registry.states.len(), registry.addresses.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    // The registry is shared by the tests running in parallel: each test
    // checks only its own states.
    fn slot() -> Box<Slot> {
        let mut s = Box::new(Slot { tag: 0, id: 0 });
        s.init();
        s
    }

    fn held(s: &Slot) -> bool {
        let registry = registry();
        registry.states.contains_key(&s.id) || registry.addresses.get(&s.address()) == Some(&s.id)
    }

    #[test]
    fn state_is_created_on_first_use_and_moved_out_once() {
        let mut a = slot();
        let p = &mut *a as *mut Slot as *mut u8;
        // SAFETY (here and below): the tests' slots are live boxes.
        assert!(unsafe { known(p) }.is_some());
        a.with::<Vec<i32>, (), _>("f", 7, |e| {
            e.state.push(1);
            Ok(())
        })
        .unwrap();
        assert_eq!(a.call(), Some(7));
        let taken = a.take::<Vec<i32>, ()>("f").unwrap().unwrap();
        assert_eq!(taken.state, vec![1]);
        // Moved out: forgotten, its address no longer read.
        assert!(!held(&a));
        // SAFETY: a live box.
        assert!(unsafe { known(p) }.is_none());
        // A second finalize (window frames) is an error, not a double move.
        let again = a.take::<Vec<i32>, ()>("f").err().unwrap().to_string();
        assert!(
            again.contains("already finalized") && again.contains("window"),
            "{again}"
        );
        let update = a
            .with::<Vec<i32>, (), _>("f", 7, |_| Ok(()))
            .err()
            .unwrap()
            .to_string();
        assert!(update.contains("no live state"), "{update}");
        a.destroy();
        assert!(!held(&a));
    }

    #[test]
    fn copied_bytes_and_double_destroy_are_harmless() {
        let a = slot();
        a.with::<String, (), _>("f", 1, |e| {
            e.state.push('x');
            Ok(())
        })
        .unwrap();
        let mut copy = Box::new(Slot {
            tag: a.tag,
            id: a.id,
        });
        // A copy at another address is not a state.
        // SAFETY: a live box.
        assert!(unsafe { known(&mut *copy as *mut Slot as *mut u8) }.is_none());
        assert!(copy.with::<String, (), _>("f", 1, |_| Ok(())).is_err());
        copy.destroy();
        assert!(held(&a), "destroying a copy forgot the original");
        a.destroy();
        a.destroy();
        assert!(!held(&a));
        assert!(a.with::<String, (), _>("f", 1, |_| Ok(())).is_err());
    }

    #[test]
    fn uninitialised_memory_and_foreign_states_are_refused() {
        let mut junk = Box::new(Slot { tag: 7, id: 99 });
        // SAFETY: a live box.
        assert!(unsafe { known(&mut *junk as *mut Slot as *mut u8) }.is_none());
        let a = slot();
        a.with::<u8, (), _>("f", 1, |_| Ok(())).unwrap();
        let e = a
            .with::<u16, (), _>("f", 1, |_| Ok(()))
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("another aggregate"), "{e}");
        // Rows of another call never reach this state.
        let e = a
            .with::<u8, (), _>("f", 2, |_| Ok(()))
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("state of another call"), "{e}");
        a.destroy();
    }

    #[test]
    fn never_used_state_takes_as_none() {
        let a = slot();
        assert!(a.take::<u8, ()>("f").unwrap().is_none());
        assert!(!held(&a));
        assert!(a.take::<u8, ()>("f").is_err());
        a.destroy();
    }

    #[test]
    fn a_failed_call_forgets_its_states_and_no_other() {
        let (a, b, other) = (slot(), slot(), slot());
        let call = 0xFA11_ED00;
        a.with::<u8, (), _>("f", call, |_| Ok(())).unwrap();
        b.with::<u8, (), _>("f", call, |_| Ok(())).unwrap();
        other.with::<u8, (), _>("f", call + 1, |_| Ok(())).unwrap();
        // A state lent to a callback when its call fails is dropped when the
        // callback returns.
        let inside = b.with::<u8, (), _>("f", call, |_| {
            forget_call(call);
            Ok(held(&b))
        });
        assert!(inside.unwrap());
        assert!(!held(&a) && !held(&b));
        assert!(held(&other));
        // DuckDB then frees the memory without destroy; nothing is left.
        other.destroy();
        assert!(!held(&other));
        a.destroy();
        b.destroy();
    }

    #[test]
    fn memory_reused_without_destroy_forgets_the_old_state() {
        let mut a = slot();
        a.with::<Vec<u8>, (), _>("f", 3, |e| {
            e.state.push(1);
            Ok(())
        })
        .unwrap();
        let old = a.id;
        // DuckDB frees the state without destroy and initialises a new
        // state in the same memory.
        a.init();
        assert!(!registry().states.contains_key(&old));
        assert_eq!(registry().addresses.get(&a.address()), Some(&a.id));
        assert!(a.take::<Vec<u8>, ()>("f").unwrap().is_none());
        a.destroy();
        assert!(!held(&a));
    }
}
